from __future__ import annotations

import importlib
import pkgutil

import dev8
from dev8.core import errors


def test_every_error_class_is_known_by_its_own_code():
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.Dev8Error)
    ]
    assert {cls.code: cls for cls in classes} == errors.ERRORS_BY_CODE


def test_a_new_subclass_is_known_at_once():
    class Invented(errors.Conflict):
        code = "invented_for_a_test"

    assert errors.errors_by_code()["invented_for_a_test"] is Invented


def test_every_error_class_anywhere_in_dev8_has_its_own_code():
    """Error classes defined beside a backend (imported only when it is chosen) must not
    reuse a code either: with every module of dev8 imported, the table still builds."""
    for module in pkgutil.walk_packages(dev8.__path__, "dev8."):
        # Not the entry points (they run) nor the migrations (Alembic runs those).
        if not module.name.endswith("__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)
    table = errors.errors_by_code()
    assert table["host_path_unsupported"] is errors.HostPathUnsupported
    assert len(set(table.values())) == len(table)
