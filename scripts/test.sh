#!/usr/bin/env bash
# The test suite, as CI runs it: sets up everything it needs (virtualenv, PostgreSQL, Docker
# engine, workspace image, Azurite), lints and type-checks, then runs every test. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
# The server's tests run on SQLite and on this PostgreSQL server (installed and started here).
if [ -z "${DEV8_TEST_DATABASE_URL:-}" ]; then
    DEV8_TEST_DATABASE_URL=$(./scripts/postgres.sh)
    export DEV8_TEST_DATABASE_URL
fi
.venv/bin/dev8 engine ensure
.venv/bin/dev8 image build
./scripts/test-tools.sh
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest "$@"
