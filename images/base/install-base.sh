#!/bin/sh
# Installs the base layer's packages and creates the dev8 user. Works on Debian and Ubuntu.
set -eux

apt-get update
# ca-certificates first, so the extra CA is in the trust store before anything uses HTTPS.
apt-get install -y --no-install-recommends ca-certificates
update-ca-certificates

apt-get install -y --no-install-recommends \
    sudo openssh-server tini \
    git curl wget vim-nox nano tmux rsync jq less procps psmisc iproute2 lsof \
    build-essential pkg-config locales bash-completion man-db \
    zip unzip xz-utils zstd gnupg dirmngr file \
    python3 python3-pip python3-venv python3-dev pipx \
    gh apt-utils debconf-utils \
    restic pigz

# man-db rebuilds its index after every install: slow, and rarely wanted in a workspace.
echo 'man-db man-db/auto-update boolean false' | debconf-set-selections
# pip refuses `pip install --user` on Debian (PEP 668). --user installs go to the home volume
# and cannot break the system's packages, and they are how user tools survive rebuilds.
rm -f /usr/lib/python3*/EXTERNALLY-MANAGED

# Locale: en_US.UTF-8, so tools that print non-ASCII behave.
if [ -f /etc/locale.gen ]; then
    sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
fi
locale-gen en_US.UTF-8
update-locale LANG=en_US.UTF-8

# User dev8, UID/GID 1000, passwordless sudo. An image that already has UID 1000 (Ubuntu 24.04's
# "ubuntu") gets that account renamed rather than a clash.
existing=$(getent passwd 1000 | cut -d: -f1 || true)
if [ -n "$existing" ] && [ "$existing" != dev8 ]; then
    usermod -l dev8 -d /home/dev8 -m "$existing"
    groupmod -n dev8 "$(id -gn dev8)"
elif [ -z "$existing" ]; then
    groupadd --gid 1000 dev8
    useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash dev8
fi
# No password at all ('*'): key-only SSH, and sudo needs none.
usermod -p '*' dev8
echo 'dev8 ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/dev8
chmod 0440 /etc/sudoers.d/dev8
mkdir -p /workspace
chown dev8:dev8 /workspace

# The image's SSH host keys are never used: the agent keeps the workspace's own keys on
# persistent storage, so the host identity survives rebuilds.
rm -f /etc/ssh/ssh_host_*

apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/* /var/tmp/*
