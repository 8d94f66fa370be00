#!/bin/sh
# hc-agent postremove (deb: "remove" | "purge" | "upgrade" ...; rpm: 0 remove,
# 1 upgrade). Purge also deletes the state (/var/lib/hc-agent); dpkg removes
# the configuration file itself.
set -e

if [ "$1" = purge ]; then
	rm -rf /var/lib/hc-agent /run/hc-agent
	rmdir /etc/hc-agent 2>/dev/null || true
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
