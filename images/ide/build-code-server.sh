#!/bin/sh
# Builds code-server from the npm registry without GitHub: install with scripts disabled, then
# do by hand what its postinstall would (which downloads from GitHub) with local inputs.
set -eux
apt-get update
apt-get install -y --no-install-recommends \
    pkg-config libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev ripgrep python3 build-essential git

# Native modules build against Node 20's own headers (shipped in /opt/node), never downloaded.
export npm_config_nodedir=/opt/node npm_config_yes=true npm_config_update_notifier=false
# The tarball must be the one pinned in the Dockerfile (the same check as the languages
# layer's install-node.sh); the shrinkwraps inside it pin and hash everything npm adds.
cd /tmp
npm pack "code-server@${CODE_SERVER_VERSION}" >/dev/null
tarball="code-server-${CODE_SERVER_VERSION}.tgz"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w 0)"
if [ "$actual" != "$CODE_SERVER_INTEGRITY" ]; then
    echo "error: $tarball from the registry has $actual, pinned $CODE_SERVER_INTEGRITY" >&2
    exit 1
fi
npm install -g --prefix /opt/code-server --ignore-scripts "./$tarball"

app=/opt/code-server/lib/node_modules/code-server
cd "$app/lib/vscode"
npm install --omit=dev --ignore-scripts
npm rebuild @parcel/watcher @vscode/spdlog @vscode/deviceid kerberos native-watchdog node-pty
mkdir -p node_modules/@vscode/ripgrep/bin
cp /usr/bin/rg node_modules/@vscode/ripgrep/bin/rg
ln -sfn node_modules node_modules.asar
cd "$app/lib/vscode/extensions"
npm install --omit=dev --ignore-scripts
cd "$app"
npm rebuild argon2

rm -rf /root/.npm /root/.cache /tmp/*
/opt/code-server/bin/code-server --version
