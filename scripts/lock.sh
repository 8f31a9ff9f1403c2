#!/usr/bin/env bash
# Rewrites the lock files under requirements/ from pyproject.toml and requirements/*.in: every
# dependency, transitive ones included, pinned to one version with the sha256 of each of its
# files (for every platform and Python >= 3.11). scripts/bootstrap.sh installs from them with
# `pip install --require-hashes`. Run after changing a dependency in pyproject.toml or a *.in
# file; `scripts/lock.sh --upgrade` also moves every unpinned transitive dependency to its
# newest release. Review the diff and commit the lock files with the change.
#
#   requirements/lock-test.txt  dev8 with its test and azure extras, the build backend, pip
#                               and uv: the development virtualenv (scripts/bootstrap.sh, CI)
#   requirements/lock.txt       dev8's own dependencies with its azure extra (the ACI backend)
#                               and the build backend: the CLI and `dev8 server` (the same
#                               versions as lock-test.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
upgrade=()
if [ "${1:-}" = "--upgrade" ]; then
    upgrade=(--upgrade)
fi
./scripts/bootstrap.sh  # .venv/bin/uv is the locked uv (requirements/dev.in)
compile=(.venv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
    --custom-compile-command scripts/lock.sh)
"${compile[@]}" "${upgrade[@]}" --extra test --extra azure pyproject.toml requirements/build.in \
    requirements/dev.in -o requirements/lock-test.txt
"${compile[@]}" --extra azure pyproject.toml requirements/build.in -c requirements/lock-test.txt \
    -o requirements/lock.txt
echo "wrote requirements/lock-test.txt and requirements/lock.txt; now run scripts/bootstrap.sh"
