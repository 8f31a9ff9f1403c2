#!/usr/bin/env bash
# Tools the tests need besides the engine and the image: the zstd command (a unit test checks
# that plain zstd reads dev8's archives), and Azurite, the Azure Storage emulator that the
# Azure Blob snapshot repository is tested against, installed from the npm registry into
# .tools/ (reused when present). On Debian/Ubuntu, as root, missing packages come from apt.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v zstd >/dev/null || apt_packages+=(zstd)
command -v npm >/dev/null || apt_packages+=(nodejs npm)
if [ ${#apt_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_packages[@]}"
    else
        echo "error: the tests need ${apt_packages[*]}; install them" >&2
        exit 1
    fi
fi

AZURITE_VERSION=3.35.0  # the newest Azurite that runs on Node 20
prefix=.tools/azurite
if [ -x "$prefix/node_modules/.bin/azurite-blob" ] \
    && grep -q "\"version\": \"$AZURITE_VERSION\"" "$prefix/node_modules/azurite/package.json"; then
    exit 0
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
