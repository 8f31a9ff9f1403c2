#!/usr/bin/env bash
# The test suite, as CI runs it: sets up everything it needs (virtualenv, PostgreSQL, Docker
# engine, workspace image, Azurite), lints and type-checks, then runs every test. Extra
# arguments go to pytest.
#
# `scripts/test.sh --fast [ARGS]` sets up none of the engine, image, tools, browser or
# database and runs only the tests that need none of them (`pytest -m "not engine and not
# postgres and not browser"`: unit tests, and the server's API, authorization, reconciler
# and fuzzing on SQLite with the fake provider), on every core (pytest-xdist: each of these
# tests has its own directory, database and kernel-chosen ports), in under 3 minutes on 2
# cores. The whole suite runs in one process: its engine tests share the engine, Azurite's
# fixed port and the nothing-left-behind checks.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=false
if [ "${1:-}" = "--fast" ]; then
    fast=true
    shift
fi
./scripts/bootstrap.sh
if ! $fast; then
    # The server's tests run on SQLite and on this PostgreSQL server (installed and started
    # here).
    if [ -z "${DEV8_TEST_DATABASE_URL:-}" ]; then
        DEV8_TEST_DATABASE_URL=$(./scripts/postgres.sh)
        export DEV8_TEST_DATABASE_URL
    fi
    .venv/bin/dev8 engine ensure
    .venv/bin/dev8 image build
    ./scripts/test-tools.sh
fi
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
if $fast; then
    exec .venv/bin/pytest -m "not engine and not postgres and not browser" -n auto \
        --dist worksteal "$@"
fi
.venv/bin/pytest "$@"
