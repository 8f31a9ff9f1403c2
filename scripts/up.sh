#!/usr/bin/env bash
# Quick start: install dev8, make a Docker engine available, build the workspace image and
# bring up a workspace, then print how to reach it. Safe to rerun; later runs take seconds.
#   ./scripts/up.sh [NAME]        (default name: demo)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/dev8 engine ensure
.venv/bin/dev8 image build
.venv/bin/dev8 up "${1:-demo}"
