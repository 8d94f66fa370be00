package agent

import (
	"maps"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metrics"
)

// TestAPIClient drives the daemon's API client, as the floating IP code
// sees it (floatingip.Cloud, no adapter), against the API simulator on
// loopback and checks that the requests reach the metrics.
func TestAPIClient(t *testing.T) {
	const token = "sim-token-0123456789"
	sim := cloudapitest.New(cloudapitest.WithTokens(token))
	t.Cleanup(sim.Close)
	srv := sim.AddServer(cloudapitest.Server{Name: "web-1"})
	fipID := sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "vip", Prefix: netip.MustParsePrefix("203.0.113.1/32")})
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)

	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	cfg := config.Config{API: config.API{Endpoint: ts.URL + "/v1", Token: token}}
	var c floatingip.Cloud = newAPIClient(cfg, m, nil, "test")

	fips, err := c.ListFloatingIPs(t.Context(), "")
	require.NoError(t, err)
	require.Len(t, fips, 1)
	assert.Equal(t, "vip", fips[0].Name)
	assert.Equal(t, int64(0), fips[0].ServerID)

	act, err := c.Assign(t.Context(), fipID, srv)
	require.NoError(t, err)
	act, err = c.WaitAction(t.Context(), act.ID)
	require.NoError(t, err)
	assert.Equal(t, "success", act.Status)

	f, err := c.GetFloatingIP(t.Context(), "vip")
	require.NoError(t, err)
	assert.Equal(t, srv, f.ServerID)
	assert.Equal(t, netip.MustParseAddr("203.0.113.1"), f.IP)

	n, err := testutil.GatherAndCount(reg, "hcagent_api_requests_total")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 2, "request series by endpoint and code")
	assert.Equal(t, 1.0, counterValue(t, reg, "hcagent_api_requests_total",
		map[string]string{"code": "201", "endpoint": "POST /floating_ips/{id}/actions/assign"}))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "hcagent_api_rate_limit_limit" {
			assert.Positive(t, mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
}

// counterValue returns the value of the counter series name{labels}.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range mt.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if maps.Equal(got, labels) {
				return mt.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("series %s%v not found", name, labels)
	return 0
}

func TestGroupHooks(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg, metrics.BuildInfo{})
	h := GroupHooks(m)
	h.RoleChanged("web", floatingip.RoleHolder)
	h.MembersChanged("web", 3, 2)
	h.Moved("web", floatingip.MoveRecord{Duration: 2 * time.Second, Result: "success"})
	h.FIPChanged("web", floatingip.FloatingIP{Type: "ipv4", IP: netip.MustParseAddr("203.0.113.1")}, true, true)
	h.FIPChanged("web", floatingip.FloatingIP{Type: "ipv6", IP: netip.MustParseAddr("2001:db8::"), Network: netip.MustParsePrefix("2001:db8::/64")}, false, true)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hcagent_floating_ip_configured 1 when the floating IP is configured on this server's network interface.
# TYPE hcagent_floating_ip_configured gauge
hcagent_floating_ip_configured{ip="2001:db8::/64"} 0
hcagent_floating_ip_configured{ip="203.0.113.1"} 1
# HELP hcagent_group_members_healthy Alive group members whose health check passes (candidates for the floating IPs).
# TYPE hcagent_group_members_healthy gauge
hcagent_group_members_healthy{group="web"} 2
# HELP hcagent_group_moves_total Floating IP moves to this server started by the group, by result (success, error, lost, aborted).
# TYPE hcagent_group_moves_total counter
hcagent_group_moves_total{group="web",result="success"} 1
# HELP hcagent_group_role 1 for this server's current role in the failover group, 0 for the other roles.
# TYPE hcagent_group_role gauge
hcagent_group_role{group="web",role="candidate"} 0
hcagent_group_role{group="web",role="holder"} 1
hcagent_group_role{group="web",role="standby"} 0
hcagent_group_role{group="web",role="stepping-down"} 0
`), "hcagent_floating_ip_configured", "hcagent_group_members_healthy", "hcagent_group_moves_total", "hcagent_group_role"))
}
