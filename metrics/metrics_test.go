package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixedClock() time.Time { return time.Unix(1700000000, 0) }

func TestRecording(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *Metrics)
		names  []string
		want   string
	}{
		{
			name: "reconcile success and error",
			record: func(m *Metrics) {
				m.ObserveReconcile(ComponentNetconf, 3*time.Millisecond, 2, nil)
				m.ObserveReconcile(ComponentNetconf, time.Millisecond, 0, errors.New("x"))
			},
			names: []string{"hcagent_reconcile_runs_total", "hcagent_reconcile_errors_total", "hcagent_netlink_changes_total", "hcagent_reconcile_last_success_timestamp_seconds"},
			want: `
# HELP hcagent_netlink_changes_total Netlink writes (address, route or link changes) made by reconciles, by component.
# TYPE hcagent_netlink_changes_total counter
hcagent_netlink_changes_total{component="netconf"} 2
# HELP hcagent_reconcile_errors_total Reconcile runs by component that returned an error.
# TYPE hcagent_reconcile_errors_total counter
hcagent_reconcile_errors_total{component="netconf"} 1
# HELP hcagent_reconcile_last_success_timestamp_seconds Unix time of the last successful reconcile by component.
# TYPE hcagent_reconcile_last_success_timestamp_seconds gauge
hcagent_reconcile_last_success_timestamp_seconds{component="netconf"} 1.7e+09
# HELP hcagent_reconcile_runs_total Reconcile runs by component.
# TYPE hcagent_reconcile_runs_total counter
hcagent_reconcile_runs_total{component="netconf"} 2
`,
		},
		{
			name: "restores and back-offs",
			record: func(m *Metrics) {
				m.ObserveRestore(KindAddress, false)
				m.ObserveRestore(KindAddress, false)
				m.ObserveRestore(KindRoute, false)
				m.ObserveRestore(KindAddress, true)
				m.ObserveRestore(KindFloatingIP, false)
				m.ObserveRestore(KindPrivateVIP, true)
			},
			names: []string{"hcagent_netconf_restores_total", "hcagent_netconf_restore_backoffs_total"},
			want: `
# HELP hcagent_netconf_restore_backoffs_total Times hc-agent stopped restoring an address or route for a while because another actor kept deleting it, by kind.
# TYPE hcagent_netconf_restore_backoffs_total counter
hcagent_netconf_restore_backoffs_total{kind="address"} 1
hcagent_netconf_restore_backoffs_total{kind="private_vip"} 1
# HELP hcagent_netconf_restores_total Addresses and routes of hc-agent that someone else deleted and hc-agent put back at once, by kind (address, route: private networks; floating_ip, private_vip).
# TYPE hcagent_netconf_restores_total counter
hcagent_netconf_restores_total{kind="address"} 2
hcagent_netconf_restores_total{kind="floating_ip"} 1
hcagent_netconf_restores_total{kind="route"} 1
`,
		},
		{
			name: "private VIPs",
			record: func(m *Metrics) {
				m.SetPrivateIP("db", "10.0.1.100", true, true)
				m.SetPrivateIP("db", "10.0.2.50", false, true)
				m.SetPrivateIP("db", "10.0.2.50", true, false)
			},
			names: []string{"hcagent_private_ip_configured", "hcagent_private_ip_assigned"},
			want: `
# HELP hcagent_private_ip_assigned 1 when the API says the group's private VIP points to this server (alias IP of its attachment, or network route via its private IP).
# TYPE hcagent_private_ip_assigned gauge
hcagent_private_ip_assigned{group="db",ip="10.0.1.100"} 1
hcagent_private_ip_assigned{group="db",ip="10.0.2.50"} 0
# HELP hcagent_private_ip_configured 1 when the group's private VIP is configured on this server's private network interface.
# TYPE hcagent_private_ip_configured gauge
hcagent_private_ip_configured{group="db",ip="10.0.1.100"} 1
hcagent_private_ip_configured{group="db",ip="10.0.2.50"} 1
`,
		},
		{
			name: "api requests and 429",
			record: func(m *Metrics) {
				m.ObserveAPIRequest("GET /floating_ips", 200)
				m.ObserveAPIRequest("GET /floating_ips", 429)
				m.SetRateLimit(3500, 3600)
			},
			names: []string{"hcagent_api_requests_total", "hcagent_api_rate_limited_total", "hcagent_api_rate_limit_remaining", "hcagent_api_rate_limit_limit"},
			want: `
# HELP hcagent_api_rate_limit_limit The project's API rate limit per hour, from the last RateLimit-Limit header.
# TYPE hcagent_api_rate_limit_limit gauge
hcagent_api_rate_limit_limit 3600
# HELP hcagent_api_rate_limit_remaining Requests left in the project's API rate limit window, from the last RateLimit-Remaining header.
# TYPE hcagent_api_rate_limit_remaining gauge
hcagent_api_rate_limit_remaining 3500
# HELP hcagent_api_rate_limited_total Hetzner Cloud API responses with status 429 (rate limit exceeded).
# TYPE hcagent_api_rate_limited_total counter
hcagent_api_rate_limited_total 1
# HELP hcagent_api_requests_total Hetzner Cloud API requests by endpoint template and HTTP status code (0: no response).
# TYPE hcagent_api_requests_total counter
hcagent_api_requests_total{code="200",endpoint="GET /floating_ips"} 1
hcagent_api_requests_total{code="429",endpoint="GET /floating_ips"} 1
`,
		},
		{
			name: "group role is a state set",
			record: func(m *Metrics) {
				m.SetGroup("web", "standby", 3, 2)
				m.SetGroup("web", "holder", 3, 3)
			},
			names: []string{"hcagent_group_role", "hcagent_group_members_alive", "hcagent_group_members_healthy"},
			want: `
# HELP hcagent_group_members_alive Group members (this server included) that failure detection sees alive.
# TYPE hcagent_group_members_alive gauge
hcagent_group_members_alive{group="web"} 3
# HELP hcagent_group_members_healthy Alive group members whose health check passes (candidates for the floating IPs).
# TYPE hcagent_group_members_healthy gauge
hcagent_group_members_healthy{group="web"} 3
# HELP hcagent_group_role 1 for this server's current role in the failover group, 0 for the other roles.
# TYPE hcagent_group_role gauge
hcagent_group_role{group="web",role="candidate"} 0
hcagent_group_role{group="web",role="holder"} 1
hcagent_group_role{group="web",role="standby"} 0
hcagent_group_role{group="web",role="stepping-down"} 0
`,
		},
		{
			name: "failover phase histogram",
			record: func(m *Metrics) {
				m.ObserveMovePhase("web", "action_succeeded", 900*time.Millisecond)
				m.ObserveMovePhase("web", "verified", 4*time.Millisecond)
			},
			names: []string{"hcagent_group_failover_phase_seconds"},
			want: `
# HELP hcagent_group_failover_phase_seconds Time of each phase of a successful move, from the previous phase: decision (from the holder failure seen), configured, assign_requested, action_succeeded, verified.
# TYPE hcagent_group_failover_phase_seconds histogram
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.001"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.005"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.01"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.025"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.05"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.1"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.25"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="0.5"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="1"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="2"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="5"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="10"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="30"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="action_succeeded",le="+Inf"} 1
hcagent_group_failover_phase_seconds_sum{group="web",phase="action_succeeded"} 0.9
hcagent_group_failover_phase_seconds_count{group="web",phase="action_succeeded"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.001"} 0
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.005"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.01"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.025"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.05"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.1"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.25"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="0.5"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="1"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="2"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="5"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="10"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="30"} 1
hcagent_group_failover_phase_seconds_bucket{group="web",phase="verified",le="+Inf"} 1
hcagent_group_failover_phase_seconds_sum{group="web",phase="verified"} 0.004
hcagent_group_failover_phase_seconds_count{group="web",phase="verified"} 1
`,
		},
		{
			name: "moves and failover histogram",
			record: func(m *Metrics) {
				m.ObserveMove("web", 1500*time.Millisecond, "success")
				m.ObserveMove("web", 0, "error")
			},
			names: []string{"hcagent_group_moves_total", "hcagent_group_failover_duration_seconds"},
			want: `
# HELP hcagent_group_failover_duration_seconds Time from the decision to take the floating IPs to the API confirming the assignment.
# TYPE hcagent_group_failover_duration_seconds histogram
hcagent_group_failover_duration_seconds_bucket{group="web",le="0.25"} 0
hcagent_group_failover_duration_seconds_bucket{group="web",le="0.5"} 0
hcagent_group_failover_duration_seconds_bucket{group="web",le="1"} 0
hcagent_group_failover_duration_seconds_bucket{group="web",le="2"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="3"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="5"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="8"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="13"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="21"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="34"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="60"} 1
hcagent_group_failover_duration_seconds_bucket{group="web",le="+Inf"} 1
hcagent_group_failover_duration_seconds_sum{group="web"} 1.5
hcagent_group_failover_duration_seconds_count{group="web"} 1
# HELP hcagent_group_moves_total Floating IP moves to this server started by the group, by result (success, error, lost, aborted).
# TYPE hcagent_group_moves_total counter
hcagent_group_moves_total{group="web",result="error"} 1
hcagent_group_moves_total{group="web",result="success"} 1
`,
		},
		{
			name: "floating ip, metadata and black hole",
			record: func(m *Metrics) {
				m.SetFloatingIP("203.0.113.7", true, false)
				m.SetFloatingIP("2001:db8::1", false, false)
				m.DeleteFloatingIP("2001:db8::1")
				m.ObserveMetadata("summary", nil)
				m.ObserveMetadata("summary", errors.New("timeout"))
				m.SetBlackholed(true)
			},
			names: []string{"hcagent_floating_ip_configured", "hcagent_floating_ip_assigned", "hcagent_metadata_requests_total", "hcagent_metadata_request_errors_total", "hcagent_metadata_blackholed"},
			want: `
# HELP hcagent_floating_ip_assigned 1 when the API says the floating IP is assigned to this server.
# TYPE hcagent_floating_ip_assigned gauge
hcagent_floating_ip_assigned{ip="203.0.113.7"} 0
# HELP hcagent_floating_ip_configured 1 when the floating IP is configured on this server's network interface.
# TYPE hcagent_floating_ip_configured gauge
hcagent_floating_ip_configured{ip="203.0.113.7"} 1
# HELP hcagent_metadata_blackholed 1 when a route sends 169.254.169.254 through a private network gateway (metadata black hole).
# TYPE hcagent_metadata_blackholed gauge
hcagent_metadata_blackholed 1
# HELP hcagent_metadata_request_errors_total Metadata service reads by document that failed after all retries.
# TYPE hcagent_metadata_request_errors_total counter
hcagent_metadata_request_errors_total{document="summary"} 1
# HELP hcagent_metadata_requests_total Metadata service reads by document, including failed ones.
# TYPE hcagent_metadata_requests_total counter
hcagent_metadata_requests_total{document="summary"} 2
`,
		},
		{
			name:   "build info and start time",
			record: func(m *Metrics) {},
			names:  []string{"hcagent_start_time_seconds"},
			want: `
# HELP hcagent_start_time_seconds Unix time at which the agent started.
# TYPE hcagent_start_time_seconds gauge
hcagent_start_time_seconds 1.7e+09
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			m := New(reg, BuildInfo{Version: "v1.2.3", Commit: "abc"}, WithClock(fixedClock))
			tt.record(m)
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(tt.want), tt.names...))
		})
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	m.ObserveReconcile(ComponentNetconf, time.Second, 1, nil)
	m.ObserveAPIRequest("GET /x", 200)
	m.SetRateLimit(1, 2)
	m.SetFloatingIP("x", true, true)
	m.DeleteFloatingIP("x")
	m.SetPrivateIP("g", "10.0.0.9", true, false)
	m.SetGroup("g", "holder", 1, 1)
	m.ObserveMove("g", time.Second, "success")
	m.DeleteGroup("g")
	m.ObserveMetadata("summary", nil)
	m.SetBlackholed(true)
	m.SetReady(true)
	m.IncWatchdog()
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	New(reg, BuildInfo{Version: "v1.2.3", Commit: "abc"})
	n, err := testutil.GatherAndCount(reg, "hcagent_build_info")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

// serve starts a Server on a loopback port and returns its base URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", h, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return "http://" + srv.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, BuildInfo{Version: "v1", Commit: "c"})
	m.SetGroup("web", "holder", 2, 2)
	var healthErr error
	base := serve(t, Handler(reg,
		func() error { return healthErr },
		func() any { return map[string]any{"instance_id": 42} }))

	tests := []struct {
		name     string
		setup    func()
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz ok", func() { healthErr = nil }, "/healthz", 200, "ok\n"},
		{"healthz failing", func() { healthErr = errors.New("no reconcile for 2m0s") }, "/healthz", 503, "no reconcile for 2m0s\n"},
		{"status json", nil, "/status", 200, "{\n  \"instance_id\": 42\n}\n"},
		{"unknown path", nil, "/nope", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			code, body := get(t, base+tt.path)
			assert.Equal(t, tt.wantCode, code)
			assert.Equal(t, tt.wantBody, body)
		})
	}
	t.Run("metrics", func(t *testing.T) {
		code, body := get(t, base+"/metrics")
		assert.Equal(t, 200, code)
		assert.Contains(t, body, `hcagent_group_role{group="web",role="holder"} 1`)
	})
}

// TestPromtoolCheckMetrics lints the full /metrics output, with every metric
// family populated, with promtool (Debian package prometheus).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it): skipping the metrics lint")
	}
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, BuildInfo{Version: "v1", Commit: "c"}, WithRuntimeCollectors())
	m.ObserveReconcile(ComponentNetconf, time.Millisecond, 1, errors.New("x"))
	m.ObserveReconcile(ComponentFloatingIP, time.Millisecond, 1, nil)
	m.ObserveAPIRequest("GET /floating_ips", 429)
	m.SetRateLimit(1, 3600)
	m.SetFloatingIP("203.0.113.7", true, true)
	m.SetGroup("web", "holder", 3, 3)
	m.ObserveMove("web", time.Second, "success")
	m.ObserveMetadata("summary", errors.New("x"))
	m.SetBlackholed(false)
	m.SetReady(true)
	m.IncWatchdog()
	base := serve(t, Handler(reg, nil, nil))
	_, body := get(t, base+"/metrics")

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	assert.Empty(t, strings.TrimSpace(string(out)), "promtool reported problems")
}

func TestListenDefaultAddrBusy(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { srv.ln.Close() })
	_, err = Listen(srv.Addr().String(), http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "listen for metrics on")
}

func TestDeleteGroup(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg, BuildInfo{})
	m.SetGroup("web", "holder", 3, 3)
	m.SetGroup("db", "standby", 2, 1)
	m.ObserveMove("db", time.Second, "success")
	m.DeleteGroup("db")
	want := `
# HELP hcagent_group_members_alive Group members (this server included) that failure detection sees alive.
# TYPE hcagent_group_members_alive gauge
hcagent_group_members_alive{group="web"} 3
# HELP hcagent_group_moves_total Floating IP moves to this server started by the group, by result (success, error, lost, aborted).
# TYPE hcagent_group_moves_total counter
hcagent_group_moves_total{group="db",result="success"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "hcagent_group_members_alive", "hcagent_group_moves_total"))
	n, err := testutil.GatherAndCount(reg, "hcagent_group_role")
	require.NoError(t, err)
	assert.Equal(t, len(Roles), n, "only web's roles are left")
}
