package keepalived

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Script is the notify_master script of the baseline. When keepalived makes
// the server MASTER it assigns the floating IP to this server with curl,
// then polls the action every PollInterval until it succeeds, as the
// usual "keepalived + Hetzner floating IP" guides do. Each step is appended
// to LogFile with a Unix timestamp, so the harness can tell when the script
// ran and when it saw the action finish.
type Script struct {
	Endpoint     string // API base URL, e.g. http://10.0.0.1:8080/v1
	HeaderFile   string // file with the line "Authorization: Bearer <token>", mode 0600
	FloatingIPID int64
	ServerID     int64
	LogFile      string
	PollInterval time.Duration // default 1s
}

// Render returns the POSIX sh text of the script. The token stays in
// HeaderFile (curl -H @file) so that it never appears in a process list or
// in the script.
func (s Script) Render() (string, error) {
	if s.Endpoint == "" || s.HeaderFile == "" || s.FloatingIPID <= 0 || s.ServerID <= 0 || s.LogFile == "" {
		return "", fmt.Errorf("render notify script for server %d: endpoint, header file, floating IP, server and log file are required", s.ServerID)
	}
	poll := s.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	r := strings.NewReplacer(
		"@ENDPOINT@", shQuote(strings.TrimRight(s.Endpoint, "/")),
		"@HEADERS@", shQuote(s.HeaderFile),
		"@FIP@", strconv.FormatInt(s.FloatingIPID, 10),
		"@SERVER@", strconv.FormatInt(s.ServerID, 10),
		"@LOG@", shQuote(s.LogFile),
		"@POLL@", formatSeconds(poll),
	)
	return r.Replace(scriptTemplate), nil
}

// shQuote quotes v for sh in single quotes.
func shQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

const scriptTemplate = `#!/bin/sh
# keepalived notify_master: move the floating IP to this server through the
# Hetzner Cloud API and wait for the action (benchmark baseline).
set -u
ENDPOINT=@ENDPOINT@
HEADERS=@HEADERS@
FIP=@FIP@
SERVER=@SERVER@
LOG=@LOG@

log() { echo "$(date +%s.%N) $*" >>"$LOG"; }

case "${1:-}" in
master|MASTER) ;;
*) exit 0 ;;
esac

log notify master
resp=$(curl -sS -m 10 -X POST -H @"$HEADERS" -H 'Content-Type: application/json' \
	-d "{\"server\":$SERVER}" "$ENDPOINT/floating_ips/$FIP/actions/assign") || { log assign failed; exit 1; }
action=$(printf '%s' "$resp" | tr -d ' \t\r\n' | grep -o '"id":[0-9]*' | head -n 1 | cut -d: -f2)
if [ -z "$action" ]; then
	log assign rejected
	exit 1
fi
log assign requested "$action"
while :; do
	st=$(curl -sS -m 10 -H @"$HEADERS" "$ENDPOINT/actions/$action" | tr -d ' \t\r\n')
	case "$st" in
	*'"status":"success"'*) log assign done "$action"; exit 0 ;;
	*'"status":"error"'*) log assign error "$action"; exit 1 ;;
	esac
	sleep @POLL@
done
`
