#!/usr/bin/env bash
# Tools the integration tests need besides the engine and the image: Azurite, the Azure
# Storage emulator that the Azure Blob snapshot repository is tested against. Installed from
# the npm registry into .tools/ (reused when present). On Debian/Ubuntu, as root, Node.js and
# npm come from apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

AZURITE_VERSION=3.35.0  # the newest Azurite that runs on Node 20
prefix=.tools/azurite
if [ -x "$prefix/node_modules/.bin/azurite-blob" ] \
    && grep -q "\"version\": \"$AZURITE_VERSION\"" "$prefix/node_modules/azurite/package.json"; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
    else
        echo "error: the tests need npm to install Azurite; install Node.js and npm" >&2
        exit 1
    fi
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
