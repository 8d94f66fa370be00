#!/bin/sh
# hc-agent preremove (deb: "remove" | "upgrade" ...; rpm: 0 remove, 1 upgrade).
# On removal the service is stopped (a holder hands its floating IPs over to
# a healthy peer first) and disabled. Upgrades keep it: postinstall restarts.
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if ! command -v systemctl >/dev/null 2>&1; then
	exit 0
fi
if [ -d /run/systemd/system ]; then
	systemctl stop hc-agent.service || true
fi
systemctl disable hc-agent.service >/dev/null 2>&1 || true
exit 0
