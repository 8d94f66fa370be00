package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/netconf"
	"github.com/hc-agent/hc-agent/statedir"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/internal/nstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
	"github.com/hc-agent/hc-agent/metrics"
)

var linkSeq atomic.Int32

// TestRunInNetns runs the real agent (metadata client, netconf over netlink)
// against the fake metadata service, with netlink acting in a namespace the
// test created. The state dir holds an ownership record claiming 10.0.0.99
// on the private NIC: when it was written by this server, the agent removes
// that address (it owns it and metadata no longer lists it); when it comes
// from the server the image was made on, it is discarded and the address,
// which hc-agent never added here, stays.
func TestRunInNetns(t *testing.T) {
	const mac = "86:00:00:aa:bb:01"
	for _, tc := range []struct {
		name          string
		stateInstance int64
		wantStray     bool
	}{
		{name: "state from this server is used", stateInstance: 4711, wantStray: false},
		{name: "state from the image's build server is discarded", stateInstance: 1, wantStray: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, peer := nstestNS(t), nstestNS(t)
			h, err := netlink.NewHandleAt(server)
			require.NoError(t, err)
			t.Cleanup(h.Close)
			ph, err := netlink.NewHandleAt(peer)
			require.NoError(t, err)
			t.Cleanup(ph.Close)

			seq := linkSeq.Add(1)
			name := fmt.Sprintf("hca%d-%d", os.Getpid()%100000, seq)
			peerName := fmt.Sprintf("hcb%d-%d", os.Getpid()%100000, seq)
			hw, _ := net.ParseMAC(mac)
			require.NoError(t, h.LinkAdd(&netlink.Veth{
				LinkAttrs:     netlink.LinkAttrs{Name: name, HardwareAddr: hw, MTU: 1500},
				PeerName:      peerName,
				PeerNamespace: netlink.NsFd(int(peer)),
			}))
			pl, err := ph.LinkByName(peerName)
			require.NoError(t, err)
			require.NoError(t, ph.LinkSetUp(pl))
			link, err := h.LinkByName(name)
			require.NoError(t, err)
			stray, _ := netlink.ParseAddr("10.0.0.99/32")
			require.NoError(t, h.AddrAdd(link, stray))

			md := metadatatest.New(t)
			md.SetSummary(metadata.Summary{InstanceID: 4711, Hostname: "web-1"})
			md.SetPrivateNetworks([]metadata.PrivateNetwork{{
				IP:          netip.MustParseAddr("10.0.0.2"),
				MACAddress:  hw,
				NetworkID:   1,
				NetworkName: "net",
				Network:     netip.MustParsePrefix("10.0.0.0/16"),
				Subnet:      netip.MustParsePrefix("10.0.0.0/24"),
				Gateway:     netip.MustParseAddr("10.0.0.1"),
			}})

			stateDir := t.TempDir()
			require.NoError(t, statedir.SaveState(stateDir, statedir.State{InstanceID: tc.stateInstance}))
			writeFile(t, filepath.Join(stateDir, OwnedFile),
				`{"version": 1, "addresses": [{"mac": "`+mac+`", "prefix": "10.0.0.99/32"}]}`)

			cfg := config.Default()
			cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
			cfg.StateDir = stateDir
			cfg.Metadata.Endpoint = md.URL()
			cfg.Metrics.Listen = "127.0.0.1:0"
			log := slog.New(slog.NewTextHandler(t.Output(), nil))
			ready := make(chan struct{})
			a, err := NewDaemon(cfg, Options{
				Log: log, Build: metrics.BuildInfo{Version: "test"},
				Notify: func(s string) error {
					if s == "READY=1" {
						close(ready)
					}
					return nil
				},
				Watchdog: func() (time.Duration, error) { return 0, nil },
			}, &server)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("agent stopped before READY: %v", err)
			}
			addrs, err := h.AddrList(link, netlink.FAMILY_V4)
			require.NoError(t, err)
			var got []string
			for _, a := range addrs {
				got = append(got, a.IPNet.String())
			}
			assert.Contains(t, got, "10.0.0.2/32")
			if tc.wantStray {
				assert.Contains(t, got, "10.0.0.99/32")
			} else {
				assert.NotContains(t, got, "10.0.0.99/32")
			}
			st := a.Status()
			assert.Equal(t, int64(4711), st.InstanceID)
			assert.Empty(t, st.Components[ComponentNetconf].Error)
			cancel()
			require.NoError(t, <-done)
		})
	}
}

// TestRunDaemonStopsWithoutMetadata: RunDaemon applies nothing and returns
// cleanly when it is stopped before the metadata service answered (here a
// closed loopback port).
func TestRunDaemonStopsWithoutMetadata(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Default()
	cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
	cfg.StateDir = t.TempDir()
	cfg.Metadata.Endpoint = "http://" + addr + "/hetzner/v1/metadata"
	cfg.Metadata.Attempts = 1
	cfg.Metrics.Listen = config.MetricsOff
	t.Setenv("NOTIFY_SOCKET", "")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, RunDaemon(ctx, cfg, Options{}, nil))
	ents, err := statedir.StateEntries(cfg.StateDir)
	require.NoError(t, err)
	assert.Empty(t, ents, "state written without metadata")
}

// nstestNS is a fresh network namespace for the test (see nstest.New).
func nstestNS(t *testing.T) netns.NsHandle {
	ns, _ := nstest.New(t)
	return ns
}

// TestOneBudgetFailoverGoesFirst runs the daemon's real wiring (in a
// network namespace, against the API simulator on loopback) with the
// project's budget nearly spent: the group takes its floating IP with
// urgent calls, and the manager's next poll, due meanwhile, waits for the
// budget to refill instead of spending the requests that a failover may
// need. With a second client (a second budget) the manager could not know
// what the group spent and polled at once (issue 11 defect 1).
func TestOneBudgetFailoverGoesFirst(t *testing.T) {
	const token = "sim-token-0123456789"
	// 40 requests per hour: one refills every 90 s; the reserve that
	// polling leaves to failover is 2.
	sim := cloudapitest.New(cloudapitest.WithTokens(token), cloudapitest.WithRateLimit(40, time.Hour))
	t.Cleanup(sim.Close)
	self := sim.AddServer(cloudapitest.Server{Name: "web-1"})
	dead := sim.AddServer(cloudapitest.Server{Name: "web-2"})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "vip", Prefix: netip.MustParsePrefix("203.0.113.10/32"), ServerID: dead})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "mine", Prefix: netip.MustParsePrefix("203.0.113.11/32"), ServerID: self})
	assigned := make(chan int64, 4)
	sim.OnAssign(func(fip, server int64, ip netip.Prefix) { assigned <- server })
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)

	// The public NIC (96: MAC) in a namespace of the test's own.
	server, peer := nstestNS(t), nstestNS(t)
	h, err := netlink.NewHandleAt(server)
	require.NoError(t, err)
	t.Cleanup(h.Close)
	seq := linkSeq.Add(1)
	hw, _ := net.ParseMAC("96:00:00:aa:bb:02")
	name := fmt.Sprintf("hcp%d-%d", os.Getpid()%100000, seq)
	require.NoError(t, h.LinkAdd(&netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: hw, MTU: 1500},
		PeerName:  fmt.Sprintf("hcq%d-%d", os.Getpid()%100000, seq), PeerNamespace: netlink.NsFd(int(peer)),
	}))
	link, err := h.LinkByName(name)
	require.NoError(t, err)
	require.NoError(t, h.LinkSetUp(link))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	off := false
	cfg := config.Default()
	cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
	cfg.StateDir = t.TempDir()
	cfg.Metrics.Listen = config.MetricsOff
	cfg.PrivateNetworks.Enabled = &off
	cfg.API.Endpoint, cfg.API.Token = ts.URL+"/v1", token
	cfg.API.PollInterval = 2 * time.Second
	g := config.DefaultGroup()
	g.Name, g.FloatingIPs, g.Insecure, g.Bind, g.Port = "web", []string{"vip"}, true, "127.0.0.1", port
	cfg.Groups = []config.Group{g}
	md := metadatatest.New(t)
	md.SetSummary(metadata.Summary{InstanceID: self, Hostname: "web-1"})

	d, err := NewDaemon(cfg, Options{Notify: func(string) error { return nil }, Watchdog: func() (time.Duration, error) { return 0, nil }}, &server)
	require.NoError(t, err)
	d.w.md = metadata.New(metadata.WithEndpoint(md.URL()))
	// Seven requests left: the manager's first sync, the group's first
	// read and its take (read, assign, verify; the action is done at once)
	// leave the reserve.
	sim.SetRateLimitRemaining(7)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case got := <-assigned:
		assert.Equal(t, self, got, "the group took the floating ip")
	case err := <-done:
		t.Fatalf("daemon stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the group did not take the floating ip")
	}
	// An observation window of two poll intervals: the manager's poll is
	// due but must wait for the budget.
	w := time.NewTimer(2 * cfg.API.PollInterval)
	<-w.C
	cancel()
	require.NoError(t, <-done)

	var polls, rateLimited int
	assignOK := false
	for _, r := range sim.RequestLog() {
		switch {
		case r.Status == http.StatusTooManyRequests:
			rateLimited++
		case r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/actions/assign"):
			assignOK = r.Status == http.StatusCreated
		case r.Method == http.MethodGet && r.Path == "/floating_ips" && !strings.Contains(r.Query, "name="):
			polls++
		}
	}
	assert.True(t, assignOK, "the assign went through: %v", sim.RequestLog())
	assert.Zero(t, rateLimited, "requests refused: %v", sim.RequestLog())
	assert.Equal(t, 1, polls, "manager polls: the first sync only, the next waits for the budget: %v", sim.RequestLog())
}

// TestNoToken: without a token the API parts do not start; that is a
// warning only when a failover group needs the token (issue 15 item 7).
func TestNoToken(t *testing.T) {
	off := false
	tests := []struct {
		name   string
		groups []config.Group
		fipOff bool
		want   string
	}{
		{name: "group needs the token", groups: []config.Group{{Name: "web"}}, want: `level=WARN msg="no API token: floating IPs and failover groups are not started"`},
		{name: "floating ips only", want: `level=INFO msg="no API token: floating IPs assigned to this server are not configured"`},
		{name: "nothing needs it", fipOff: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.RuntimeDir = t.TempDir() // never the host's /run/hc-agent
			cfg.Groups = tt.groups
			if tt.fipOff {
				cfg.FloatingIPs.Enabled = &off
			}
			var logs bytes.Buffer
			noToken(slog.New(slog.NewTextHandler(&logs, nil)), cfg)
			if tt.want == "" {
				assert.Empty(t, logs.String())
				return
			}
			assert.Contains(t, logs.String(), tt.want)
		})
	}
}

// TestStateFileNames keeps statedir's name of netconf's record equal to
// netconf's: prepare-image and the instance check remove it by that name.
func TestStateFileNames(t *testing.T) {
	assert.Equal(t, netconf.OwnedFileName, statedir.NetconfOwnedFile)
}

// TestWireFloatingIPsDisabled: floating_ips.enabled: false starts no
// manager and no group that holds floating IPs, but a group of private
// VIPs only still starts (it configures no floating IP address).
func TestWireFloatingIPsDisabled(t *testing.T) {
	off := false
	web := config.DefaultGroup()
	web.Name, web.FloatingIPs = "web", []string{"vip"}
	db := config.DefaultGroup()
	db.Name, db.PrivateIPs = "db", []config.PrivateIP{{IP: "10.0.1.100", Via: config.ViaAlias}}
	tests := []struct {
		name        string
		fipOff      bool
		wantManager bool
		wantGroups  []string
		wantLog     string
	}{
		{name: "enabled", wantManager: true, wantGroups: []string{"web", "db"}},
		{name: "disabled", fipOff: true, wantGroups: []string{"db"}, wantLog: `msg="floating_ips disabled: failover groups that hold floating IPs are not started" groups=web`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := nstestNS(t)
			cfg := config.Default()
			cfg.RuntimeDir, cfg.StateDir = t.TempDir(), t.TempDir()
			cfg.Metrics.Listen = config.MetricsOff
			cfg.PrivateNetworks.Enabled = &off
			cfg.API.Endpoint, cfg.API.Token = "http://127.0.0.1:1/v1", "token-0123456789"
			if tc.fipOff {
				cfg.FloatingIPs.Enabled = &off
			}
			cfg.Groups = []config.Group{web, db}
			var logs syncBuffer
			d, err := NewDaemon(cfg, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))}, &ns)
			require.NoError(t, err)
			t.Cleanup(func() { d.w.h.Close() })
			c, err := d.w.wire(t.Context(), metadata.Summary{InstanceID: 1})
			require.NoError(t, err)
			assert.Equal(t, tc.wantManager, c.FloatingIP != nil, "manager")
			assert.NotNil(t, c.Groups)
			var names []string
			for _, g := range c.Factory.(groupsParams).cfg.Groups {
				names = append(names, g.Name)
			}
			assert.Equal(t, tc.wantGroups, names)
			if tc.wantLog != "" {
				assert.Contains(t, logs.String(), tc.wantLog)
			}
		})
	}
}
