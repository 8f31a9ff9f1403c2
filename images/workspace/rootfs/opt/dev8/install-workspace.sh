#!/bin/sh
set -eux
# The agent gets its own virtualenv with nothing but its own code (standard library only).
python3 -m venv /opt/dev8/venv
site=$(/opt/dev8/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp -r /tmp/agent/dev8 "$site/"
/opt/dev8/venv/bin/python -m compileall -q "$site/dev8"
rm -rf /tmp/agent

chmod 0755 /opt/dev8/bin/* /usr/local/bin/gh
chmod 0644 /etc/ssh/sshd_config.d/dev8.conf /etc/profile.d/dev8.sh /etc/gitconfig

# SSH sessions get the same PATH as the image's ENV, tools in the user's home first
# (pam_env runs for every SSH session, login shell or not).
cat >> /etc/security/pam_env.conf <<'CONF'
PATH DEFAULT=@{HOME}/.local/bin:@{HOME}/.cargo/bin:@{HOME}/go/bin:/opt/node/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CONF
# Variables sshd sessions would otherwise lose (the image ENV only reaches `docker exec`).
cat >> /etc/environment <<'CONF'
LANG=en_US.UTF-8
SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
PIP_CERT=/etc/ssl/certs/ca-certificates.crt
NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
CONF

# Packages: Debian's docker images disable apt's cache; dev8 needs it (see 99dev8-packages).
rm -f /etc/apt/apt.conf.d/docker-clean
chmod 0755 /opt/dev8/bin/dev8-package-hook
mkdir -p /var/lib/dev8/packages/archives/partial
chmod 0711 /var/lib/dev8/packages && chown _apt:root /var/lib/dev8/packages/archives/partial
# The image's own packages, sources and choices: what the user adds is measured against it.
/opt/dev8/venv/bin/python -m dev8.agent.packages baseline

# The skeleton: what the image puts in the home. The agent copies what is missing into the
# home volume at every start and never overwrites what the user has.
rm -rf /opt/dev8/skel
cp -a /home/dev8 /opt/dev8/skel
