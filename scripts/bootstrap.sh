#!/usr/bin/env bash
# Installs dev8 and its test tools into ./.venv (reused when present and up to date).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "error: dev8's locked dependencies need Python 3.11 or newer as '$python' (set PYTHON=...)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
            rm -rf .venv && "$python" -m venv .venv
        else
            echo "error: '$python -m venv' failed; install your distribution's python3-venv" >&2
            exit 1
        fi
    fi
fi
# Exactly the locked set (requirements/lock-test.txt, written by scripts/lock.sh): every
# package, transitive ones included, at its pinned version and checked against its sha256;
# then dev8 itself, which brings nothing more (its build backend is in the lock too). On an
# existing virtualenv this brings each package to the lock and leaves the rest alone.
lock=requirements/lock-test.txt
stamp=.venv/.dev8-installed
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --require-hashes -r "$lock"
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    touch "$stamp"
fi
