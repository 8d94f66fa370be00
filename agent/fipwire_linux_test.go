package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/statedir"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
)

func TestGroupOwned(t *testing.T) {
	groups := []config.Group{
		{Name: "web", FloatingIPs: []string{"web-v4", "42"}},
		{Name: "db", FloatingIPSelector: "role=db"},
	}
	excl, err := groupOwned(groups)
	require.NoError(t, err)
	tests := []struct {
		name string
		fip  floatingip.FloatingIP
		want bool
	}{
		{"by name", floatingip.FloatingIP{ID: 1, Name: "web-v4"}, true},
		{"by id", floatingip.FloatingIP{ID: 42, Name: "other"}, true},
		{"by selector", floatingip.FloatingIP{ID: 2, Name: "x", Labels: map[string]string{"role": "db"}}, true},
		{"selector mismatch", floatingip.FloatingIP{ID: 3, Name: "y", Labels: map[string]string{"role": "web"}}, false},
		{"unrelated", floatingip.FloatingIP{ID: 4, Name: "z"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, excl(tc.fip))
		})
	}
	t.Run("bad selector", func(t *testing.T) {
		_, err := groupOwned([]config.Group{{Name: "bad", FloatingIPSelector: "=="}})
		assert.ErrorContains(t, err, "group bad")
	})
}

func TestIPv6HostAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.Addr
		wantErr bool
	}{
		// No default downstream: config.Default holds ::1.
		{"", netip.Addr{}, true},
		{"::2", netip.MustParseAddr("::2"), false},
		{"nonsense", netip.Addr{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			cfg := config.Default()
			cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
			cfg.FloatingIPs.IPv6Host = tc.in
			got, err := cfg.FloatingIPs.IPv6HostAddr()
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestWireFloatingIP checks which floating IP components the daemon's
// wiring builds. It opens a netlink handle in the current namespace but
// sends nothing.
func TestWireFloatingIP(t *testing.T) {
	off := false
	tests := []struct {
		name       string
		enabled    *bool
		noToken    bool
		ownedJSON  string
		wantErr    bool
		wantMgr    bool
		wantGroups bool
	}{
		{name: "default enabled", wantMgr: true, wantGroups: true},
		{name: "disabled", enabled: &off},
		{name: "no token", noToken: true},
		{name: "corrupt ownership record", ownedJSON: "{", wantErr: true},
	}
	h, err := netlink.NewHandle()
	require.NoError(t, err)
	t.Cleanup(h.Close)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
			cfg.StateDir = t.TempDir()
			cfg.FloatingIPs.Enabled = tc.enabled
			cfg.PrivateNetworks.Enabled = &off
			if !tc.noToken {
				cfg.API.Token = "token"
			}
			g := config.DefaultGroup()
			g.Name, g.FloatingIPs = "web", []string{"vip"}
			cfg.Groups = []config.Group{g}
			if tc.ownedJSON != "" {
				writeFile(t, filepath.Join(cfg.StateDir, statedir.FloatingIPOwnedFile), tc.ownedJSON)
			}
			a, err := New(cfg, Options{})
			require.NoError(t, err)
			d := &wiring{cfg: cfg, a: a, h: h, ipv6Host: netip.MustParseAddr("::1"), log: slog.New(slog.DiscardHandler)}
			c, err := d.wire(t.Context(), metadata.Summary{InstanceID: 7})
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantMgr, c.FloatingIP != nil, "floating ip manager")
			assert.Equal(t, tc.wantGroups, c.Groups != nil, "groups")
			if gp, ok := c.Factory.(groupsParams); ok {
				// The groups' gossip carries the manager's reads only
				// when there is a manager (issue 14).
				assert.Equal(t, tc.wantMgr, gp.share != nil, "read share")
			}
			assert.Nil(t, c.Netconf, "private networks disabled")
		})
	}
}

const fipMetricsHeader = `# HELP hcagent_floating_ip_assigned 1 when the API says the floating IP is assigned to this server.
# TYPE hcagent_floating_ip_assigned gauge
`

// TestManagerConfigHooks checks that the Manager's hooks feed the floating
// IP metrics, drop the series of a floating IP that is gone, and report
// every sync to the agent.
func TestManagerConfigHooks(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var reports []Report
	cfg := config.Default()
	cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
	cfg.Groups = []config.Group{{Name: "web", FloatingIPs: []string{"web-v4"}}}
	mc, err := managerConfig(cfg, metadata.Summary{InstanceID: 7}, netip.MustParseAddr("::1"), metrics.New(reg, metrics.BuildInfo{}),
		func(r Report) { reports = append(reports, r) })
	require.NoError(t, err)
	assert.Equal(t, int64(7), mc.Self)
	assert.True(t, mc.Exclude(floatingip.FloatingIP{Name: "web-v4"}), "group-owned")

	v4 := floatingip.FloatingIP{ID: 1, Type: "ipv4", IP: netip.MustParseAddr("203.0.113.1")}
	v6 := floatingip.FloatingIP{ID: 2, Type: "ipv6", IP: netip.MustParseAddr("2001:db8::"), Network: netip.MustParsePrefix("2001:db8::/64")}
	other := floatingip.FloatingIP{ID: 3, Type: "ipv4", IP: netip.MustParseAddr("203.0.113.3")}
	mc.OnSync(v4, true, true)
	mc.OnSync(v6, false, true)
	mc.OnSync(other, false, false)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fipMetricsHeader+`
hcagent_floating_ip_assigned{ip="2001:db8::/64"} 1
hcagent_floating_ip_assigned{ip="203.0.113.1"} 1
hcagent_floating_ip_assigned{ip="203.0.113.3"} 0
# HELP hcagent_floating_ip_configured 1 when the floating IP is configured on this server's network interface.
# TYPE hcagent_floating_ip_configured gauge
hcagent_floating_ip_configured{ip="2001:db8::/64"} 0
hcagent_floating_ip_configured{ip="203.0.113.1"} 1
hcagent_floating_ip_configured{ip="203.0.113.3"} 0
`), "hcagent_floating_ip_assigned", "hcagent_floating_ip_configured"))

	mc.OnGone(v4)
	mc.OnGone(other)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fipMetricsHeader+`
hcagent_floating_ip_assigned{ip="2001:db8::/64"} 1
`), "hcagent_floating_ip_assigned"))

	boom := errors.New("boom")
	mc.AfterSync(time.Second, nil)
	mc.AfterSync(2*time.Second, boom)
	assert.Equal(t, []Report{
		{Component: ComponentFloatingIP, Duration: time.Second},
		{Component: ComponentFloatingIP, Duration: 2 * time.Second, Err: boom},
	}, reports)
}

// recordingHost is a floatingip.Host that records the last Set per owner.
type recordingHost struct {
	mu  sync.Mutex
	set map[string][]netip.Prefix
}

func (h *recordingHost) Set(_ context.Context, owner string, ps []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == nil {
		h.set = map[string][]netip.Prefix{}
	}
	h.set[owner] = slices.Clone(ps)
	return nil
}

func (h *recordingHost) get(owner string) []netip.Prefix {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.set[owner]
}

// TestFloatingIPManager runs the Manager as the wiring builds it against
// the API simulator on loopback: the first sync configures the floating
// IPs assigned here, skips the group-owned one, reports to the agent and
// fills the metrics.
func TestFloatingIPManager(t *testing.T) {
	const token = "sim-token-0123456789"
	sim := cloudapitest.New(cloudapitest.WithTokens(token))
	t.Cleanup(sim.Close)
	self := sim.AddServer(cloudapitest.Server{Name: "web-1"})
	other := sim.AddServer(cloudapitest.Server{Name: "web-2"})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "mine", Prefix: netip.MustParsePrefix("203.0.113.1/32"), ServerID: self})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "mine6", Type: "ipv6", Prefix: netip.MustParsePrefix("2001:db8:1::/64"), ServerID: self})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "theirs", Prefix: netip.MustParsePrefix("203.0.113.2/32"), ServerID: other})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "grp", Prefix: netip.MustParsePrefix("203.0.113.4/32"), ServerID: self})
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)

	cfg := config.Default()
	cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
	cfg.API.Endpoint = ts.URL + "/v1"
	cfg.API.Token = token
	cfg.Groups = []config.Group{{Name: "g", FloatingIPs: []string{"grp"}}}
	reg := prometheus.NewPedanticRegistry()
	reports := make(chan Report, 1)
	m := metrics.New(reg, metrics.BuildInfo{})
	host := &recordingHost{}
	mc, err := managerConfig(cfg, metadata.Summary{InstanceID: self}, netip.MustParseAddr("::1"), m, func(r Report) { reports <- r })
	require.NoError(t, err)
	mgr, err := floatingip.NewManager(mc, newAPIClient(cfg, m, slog.New(slog.DiscardHandler), "test"), host, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	var c Component = fipComponent{m: mgr}
	_, isTriggerer := c.(Triggerer)
	assert.False(t, isTriggerer, "the watchdog keep-alive must not trigger API reads")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	r := <-reports
	cancel()
	require.NoError(t, <-done)

	require.NoError(t, r.Err)
	assert.Equal(t, ComponentFloatingIP, r.Component)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("2001:db8:1::1/64")}, host.get(floatingip.ManagerOwner))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(fipMetricsHeader+`
hcagent_floating_ip_assigned{ip="2001:db8:1::/64"} 1
hcagent_floating_ip_assigned{ip="203.0.113.1"} 1
hcagent_floating_ip_assigned{ip="203.0.113.2"} 0
`), "hcagent_floating_ip_assigned"))
}

// TestManagerCadenceHealth: /healthz waits for the manager's next sync as
// long as its read mode says (a reader syncs every api.poll_interval, 20 m
// by default; a follower only on events), and /status shows the mode.
func TestManagerCadenceHealth(t *testing.T) {
	tests := []struct {
		name      string
		mode      floatingip.ReadMode // "": the manager never said
		age       time.Duration
		wantStale bool
	}{
		{"no cadence: StaleAfter", "", 6 * time.Minute, true},
		{"no cadence: fresh", "", 4 * time.Minute, false},
		{"reader within two intervals", floatingip.ReadModeReader, 40 * time.Minute, false},
		{"reader after more than two intervals", floatingip.ReadModeReader, 49 * time.Minute, true},
		{"follower", floatingip.ReadModeFollower, 30 * time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			cfg := config.Default()
			cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
			a, err := New(cfg, Options{Now: func() time.Time { return now }})
			require.NoError(t, err)
			a.setReady()
			a.Report(Report{Component: ComponentFloatingIP})
			if tc.mode != "" {
				managerCadence(a, 20*time.Minute)(tc.mode, "why")
			}
			now = now.Add(tc.age)
			if tc.wantStale {
				assert.ErrorContains(t, a.Health(), "floatingip: no reconcile for")
			} else {
				assert.NoError(t, a.Health())
			}
			assert.Equal(t, string(tc.mode), a.Status().Components[ComponentFloatingIP].Mode)
		})
	}
	t.Run("cadence before the first sync", func(t *testing.T) {
		cfg := config.Default()
		cfg.RuntimeDir = t.TempDir()
		a, err := New(cfg, Options{})
		require.NoError(t, err)
		a.setReady()
		managerCadence(a, 20*time.Minute)(floatingip.ReadModeReader, "why")
		assert.NoError(t, a.Health())
	})
}
