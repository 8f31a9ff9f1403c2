#!/usr/bin/env bash
# Tools the tests need besides the engine and the image: the zstd command (a unit test checks
# that plain zstd reads dev8's archives), Azurite, the Azure Storage emulator that the
# Azure Blob snapshot repository is tested against, installed from the npm registry into
# .tools/ (reused when present), and for the remote-access tests (tests/integration/remote):
# Debian's chromium (driven by the playwright package from PyPI; never `playwright install`),
# the OpenSSH client and rsync (the "laptop" copies files through `dev8 ssh-proxy`), iproute2
# (`ip netns`: the laptop is a network namespace) and iptables.
# On Debian/Ubuntu, as root, missing packages come from apt.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v zstd >/dev/null || apt_packages+=(zstd)
command -v npm >/dev/null || apt_packages+=(nodejs npm)
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v ssh >/dev/null || apt_packages+=(openssh-client)
command -v rsync >/dev/null || apt_packages+=(rsync)
command -v ip >/dev/null || apt_packages+=(iproute2)
command -v iptables >/dev/null || apt_packages+=(iptables)
# the registry `dev8 image build --push` is tested against (tests/integration/image/test_push.py
# starts its own on 127.0.0.1; the package's service, where systemd runs, is not used)
command -v docker-registry >/dev/null || apt_packages+=(docker-registry)
# the Kubernetes Pod and claims run for real with `podman kube play`
# (tests/integration/kubernetes/test_podman_play.py); catatonit makes podman's pause image
command -v podman >/dev/null || apt_packages+=(podman)
command -v catatonit >/dev/null || apt_packages+=(catatonit)
# the seed's own commands (tests/integration/seed): Debian's Compose; where the Compose v2
# plugin is present the tests use it instead
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 \
    || apt_packages+=(docker-compose)
if [ ${#apt_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_packages[@]}"
    else
        echo "error: the tests need ${apt_packages[*]}; install them" >&2
        exit 1
    fi
fi

# The browser must start headless here (no display, running as root: --no-sandbox).
if ! chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1; then
    echo "error: chromium is installed but does not run headless: chromium --version failed" >&2
    exit 1
fi

AZURITE_VERSION=3.35.0  # the newest Azurite that runs on Node 20
prefix=.tools/azurite
if [ -x "$prefix/node_modules/.bin/azurite-blob" ] \
    && grep -q "\"version\": \"$AZURITE_VERSION\"" "$prefix/node_modules/azurite/package.json"; then
    exit 0
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION"
