package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/agent"
	"github.com/hc-agent/hc-agent/floatingip"
)

// statusServer serves st as the daemon's /status does.
func statusServer(t *testing.T, st agent.Status) *httptest.Server {
	t.Helper()
	b, err := json.MarshalIndent(st, "", "  ")
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/status", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchAndWriteStatus(t *testing.T) {
	at := time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC)
	srv := statusServer(t, agent.Status{
		InstanceID: 11, Hostname: "web-1", StartedAt: at, UptimeSeconds: 90, Ready: true, Phase: "running",
		Components: map[string]agent.ComponentStatus{
			agent.ComponentNetconf:    {LastRun: at, LastSuccess: at, DurationSeconds: 0.0042, Changes: 2},
			agent.ComponentFloatingIP: {LastRun: at, LastSuccess: at, DurationSeconds: 0.01, Mode: "follower"},
		},
		Groups: []any{floatingip.Status{
			Name: "web", Mode: "memberlist", Self: 11, Role: floatingip.RoleHolder, Healthy: true,
			Members: []floatingip.Member{
				{ID: 11, Name: "web-1", Priority: 100, Alive: true, Healthy: true, Holding: true},
				{ID: 12, Name: "web-2", Priority: 90, Alive: true, Healthy: true},
			},
			FloatingIPs: []floatingip.FIPStatus{{ID: 5, IP: "203.0.113.7", HolderByAPI: 11, HolderByView: 11, ConfiguredHere: true}},
			LastMove: &floatingip.MoveRecord{At: at, From: 12, To: 11, Duration: 1800 * time.Millisecond, Result: "success",
				Timeline: floatingip.Timeline{Failure: floatingip.FailureDead, Marks: []floatingip.PhaseMark{
					{Phase: floatingip.PhaseFailureSeen, At: at.Add(-time.Second)},
					{Phase: floatingip.PhaseDecision, At: at, Seconds: 1},
					{Phase: floatingip.PhaseActionSucceeded, At: at.Add(1002 * time.Millisecond), Seconds: 1.002},
				}}},
			Gossip: "no peers: messages from 10.0.0.3 do not decrypt with our key (gossip key mismatch)",
		}},
	})

	raw, v, err := FetchStatus(t.Context(), strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"instance_id": 11`)
	require.Len(t, v.Groups, 1)
	assert.Equal(t, floatingip.RoleHolder, v.Groups[0].Role)

	var b strings.Builder
	require.NoError(t, WriteStatus(&b, v))
	out := b.String()
	// Compare with runs of spaces collapsed: column widths are tabwriter's.
	var flat []string
	for l := range strings.Lines(out) {
		flat = append(flat, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{
		"server web-1 (instance 11)",
		"uptime 1m30s",
		"ready yes",
		"netconf 2026-11-28T04:00:00Z 4.2ms 2 ok",
		"floatingip (follower) 2026-11-28T04:00:00Z 10ms 0 ok",
		"group web holder, healthy, mode memberlist",
		"web-1 (this server) 11 100 yes yes yes",
		"web-2 12 90 yes yes no",
		"203.0.113.7 web-1 (this server) web-1 (this server) yes",
		"last move 2026-11-28T04:00:00Z 12 -> 11 success in 1.8s",
		"PHASE AT TOOK",
		"failure_seen (dead) 03:59:59.000 -",
		"decision 04:00:00.000 1s",
		"action_succeeded 04:00:01.002 1.002s",
		"gossip no peers: messages from 10.0.0.3 do not decrypt with our key (gossip key mismatch)",
	} {
		assert.Contains(t, flat, want)
	}
	// Each table sizes its own columns: the agent block is as wide as its
	// longest key ("hc-agent"), not as the member names below.
	assert.Contains(t, out, "\nready     yes\n")
	assert.Contains(t, out, "\nMEMBER               ID  PRIORITY")
	if t.Failed() {
		t.Log("\n" + out)
	}
}

func TestWriteStatusNamesAndDrain(t *testing.T) {
	v := StatusView{Groups: []floatingip.Status{{
		Name: "db", Self: 21, Role: floatingip.RoleSteppingDown, Healthy: true, Mode: "memberlist", Drained: true,
		Members: []floatingip.Member{
			{ID: 21, Name: "21", Alive: true},
			{ID: 22, Name: "db-2", Alive: true, Holding: true},
		},
		FloatingIPs: []floatingip.FIPStatus{{IP: "203.0.113.9", HolderByAPI: 22, HolderByView: 22}},
	}}}
	var b strings.Builder
	require.NoError(t, WriteStatus(&b, v))
	var flat []string
	for l := range strings.Lines(b.String()) {
		flat = append(flat, strings.Join(strings.Fields(l), " "))
	}
	for _, want := range []string{
		"group db stepping-down, healthy, mode memberlist, DRAINED (hc-agent handover --resume to take part again)",
		"- (this server) 21 0 yes no no", // no hostname advertised: not the ID twice
		"db-2 22 0 yes no yes",
		"203.0.113.9 db-2 (22) db-2 (22) no",
	} {
		assert.Contains(t, flat, want)
	}
}

func TestFetchStatusErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := ln.Addr().String()
	ln.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{not json")) }))
	defer bad.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "x", 500) }))
	defer down.Close()

	for _, tt := range []struct {
		name, addr, want string
	}{
		{"not running", closedAddr, "hc-agent is not running (nothing listens on " + closedAddr + ")"},
		{"bad json", strings.TrimPrefix(bad.URL, "http://"), "decode agent status"},
		{"http error", strings.TrimPrefix(down.URL, "http://"), "HTTP 500"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := FetchStatus(t.Context(), tt.addr)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
