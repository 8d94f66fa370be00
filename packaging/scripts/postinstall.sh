#!/bin/sh
# hc-agent postinstall (deb: "configure" [old-version]; rpm: 1 install, 2 upgrade).
#
# The service is enabled and (re)started. That is safe with any valid
# configuration: without an API token the agent configures private networks
# only and starts neither floating IPs nor failover groups, and the
# configuration refuses a memberlist group without a gossip key file (unless
# insecure: true). So no half-configured group ever starts.
#
# HC_AGENT_NO_START=1 enables without starting (image builds, package tests).
# Without systemd as PID 1 (containers, chroots, image builders) nothing is
# started either.
set -e

case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;;
esac

if ! command -v systemctl >/dev/null 2>&1; then
	exit 0
fi

systemctl enable hc-agent.service >/dev/null 2>&1 ||
	echo "hc-agent: could not enable hc-agent.service; run: systemctl enable hc-agent" >&2

if [ ! -d /run/systemd/system ] || [ "${HC_AGENT_NO_START:-}" = 1 ]; then
	exit 0
fi
systemctl daemon-reload || true
# Upgrades restart a running agent; a fresh install starts it.
if [ "$1" = 2 ] || { [ "$1" = configure ] && [ -n "$2" ]; }; then
	systemctl try-restart hc-agent.service ||
		echo "hc-agent: restart failed; see journalctl -u hc-agent" >&2
else
	systemctl start hc-agent.service ||
		echo "hc-agent: start failed; see journalctl -u hc-agent" >&2
fi
exit 0
