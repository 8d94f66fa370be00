package keepalived

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// AliasScript is the notify_master script of the private-VIP baseline: when
// keepalived makes the server MASTER it moves an alias VIP to this server
// with change_alias_ips, read-modify-write with curl and jq, as the usual
// "keepalived + Hetzner alias IP" guides do. change_alias_ips replaces the
// whole list and the API refuses an alias that another server still holds,
// so the script first removes the VIP from every other server that lists
// it (reading that server's list and sending it back without the VIP),
// waits for each action, then adds the VIP to its own list and waits. Each
// step is appended to LogFile with a Unix timestamp.
type AliasScript struct {
	Endpoint     string // API base URL
	HeaderFile   string // file with the line "Authorization: Bearer <token>", mode 0600
	NetworkID    int64
	ServerID     int64
	VIP          netip.Addr
	LogFile      string
	PollInterval time.Duration // default 1s
}

// Render returns the POSIX sh text of the script. The token stays in
// HeaderFile, as in Script.
func (s AliasScript) Render() (string, error) {
	if s.Endpoint == "" || s.HeaderFile == "" || s.NetworkID <= 0 || s.ServerID <= 0 || !s.VIP.Is4() || s.LogFile == "" {
		return "", fmt.Errorf("render alias notify script for server %d: endpoint, header file, network, server, IPv4 VIP and log file are required", s.ServerID)
	}
	poll := s.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	r := strings.NewReplacer(
		"@ENDPOINT@", shQuote(strings.TrimRight(s.Endpoint, "/")),
		"@HEADERS@", shQuote(s.HeaderFile),
		"@NETWORK@", strconv.FormatInt(s.NetworkID, 10),
		"@SERVER@", strconv.FormatInt(s.ServerID, 10),
		"@VIP@", shQuote(s.VIP.String()),
		"@LOG@", shQuote(s.LogFile),
		"@POLL@", formatSeconds(poll),
	)
	return r.Replace(aliasScriptTemplate), nil
}

const aliasScriptTemplate = `#!/bin/sh
# keepalived notify_master: move an alias IP to this server through the
# Hetzner Cloud API, read-modify-write, and wait for each action
# (benchmark baseline).
set -u
ENDPOINT=@ENDPOINT@
HEADERS=@HEADERS@
NETWORK=@NETWORK@
SERVER=@SERVER@
VIP=@VIP@
LOG=@LOG@

log() { echo "$(date +%s.%N) $*" >>"$LOG"; }
api() { curl -sS -m 10 -H @"$HEADERS" "$@"; }

# wait_action ID: poll the action until it ends.
wait_action() {
	while :; do
		st=$(api "$ENDPOINT/actions/$1" | jq -r .action.status)
		case "$st" in
		success) return 0 ;;
		error) log action error "$1"; return 1 ;;
		esac
		sleep @POLL@
	done
}

# set_aliases SERVER JSON-LIST: change_alias_ips and wait.
set_aliases() {
	resp=$(api -X POST -H 'Content-Type: application/json' \
		-d "{\"network\":$NETWORK,\"alias_ips\":$2}" "$ENDPOINT/servers/$1/actions/change_alias_ips") || return 1
	action=$(printf '%s' "$resp" | jq -r '.action.id // empty')
	if [ -z "$action" ]; then
		log change_alias_ips rejected "$1" "$(printf '%s' "$resp" | jq -r '.error.code // empty')"
		return 1
	fi
	log change_alias_ips requested "$1" "$action"
	wait_action "$action"
}

case "${1:-}" in
master|MASTER) ;;
*) exit 0 ;;
esac

log notify master
# Remove the VIP from whoever else holds it, keeping their other aliases.
for other in $(api "$ENDPOINT/servers?per_page=50" | jq -r --arg vip "$VIP" --argjson net "$NETWORK" --argjson self "$SERVER" \
	'.servers[] | select(.id != $self) | select(any(.private_net[]; .network == $net and (.alias_ips | index($vip)))) | .id'); do
	list=$(api "$ENDPOINT/servers/$other" | jq -c --arg vip "$VIP" --argjson net "$NETWORK" \
		'[.server.private_net[] | select(.network == $net) | .alias_ips[] | select(. != $vip)]')
	set_aliases "$other" "$list" || exit 1
done
# Add it to this server's list, keeping the others.
list=$(api "$ENDPOINT/servers/$SERVER" | jq -c --arg vip "$VIP" --argjson net "$NETWORK" \
	'[.server.private_net[] | select(.network == $net) | .alias_ips[] | select(. != $vip)] + [$vip]')
set_aliases "$SERVER" "$list" || exit 1
log alias done
`
