"""The message printed at SSH login (``/etc/profile.d/dev8.sh`` shows ``/run/dev8/motd``).

Several parts of the agent have something to say (a failed package restore, a volume near
its quota); each owns a section, and setting one never clobbers another.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

SECTION_ORDER = ("packages", "quota")


class Motd:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._sections: dict[str, str] = {}
        self._lock = threading.Lock()

    def set(self, section: str, text: str | None) -> None:
        """Replace ``section``'s lines (None or empty: remove them) and rewrite the file."""
        with self._lock:
            if text and text.strip():
                self._sections[section] = text.rstrip("\n") + "\n"
            else:
                self._sections.pop(section, None)
            self._write()

    def text(self) -> str:
        ordered = sorted(self._sections, key=lambda s: (_rank(s), s))
        return "".join(self._sections[section] for section in ordered)

    def _write(self) -> None:
        content = self.text()
        if not content:
            self.path.unlink(missing_ok=True)
            return
        # Written whole and renamed into place: a login never prints half a message.
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, self.path)


def _rank(section: str) -> int:
    return SECTION_ORDER.index(section) if section in SECTION_ORDER else len(SECTION_ORDER)
