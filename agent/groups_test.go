package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
)

// soloMembership is a membership in which this server is alone.
type soloMembership struct {
	mu      sync.Mutex
	self    int64
	local   floatingip.LocalState
	changes chan struct{}
	left    bool
}

func (m *soloMembership) Members() []floatingip.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return []floatingip.Member{{ID: m.self, Alive: true, Priority: m.local.Priority,
		Healthy: m.local.Healthy, Candidate: m.local.Candidate, Holding: m.local.Holding}}
}

func (m *soloMembership) SetLocal(l floatingip.LocalState) error {
	m.mu.Lock()
	m.local = l
	m.mu.Unlock()
	select {
	case m.changes <- struct{}{}:
	default:
	}
	return nil
}

func (m *soloMembership) Changes() <-chan struct{} { return m.changes }

func (m *soloMembership) Leave(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.left = true
	return nil
}

// fakeHost records what Set configured per owner.
type fakeHost struct {
	mu  sync.Mutex
	set map[string][]netip.Prefix
}

func (h *fakeHost) Set(ctx context.Context, owner string, prefixes []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.set[owner] = append([]netip.Prefix(nil), prefixes...)
	return nil
}

func (h *fakeHost) get(owner string) []netip.Prefix {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.set[owner]
}

// TestGroups runs the agent with one failover group of one member
// against the API simulator on loopback: the group takes the floating IP,
// configures it, shows up in /status and the metrics, and leaves on stop.
func TestGroups(t *testing.T) {
	const token = "sim-token-0123456789"
	sim := cloudapitest.New(cloudapitest.WithTokens(token))
	t.Cleanup(sim.Close)
	self := sim.AddServer(cloudapitest.Server{Name: "web-1"})
	sim.AddFloatingIP(cloudapitest.FloatingIP{Name: "vip", Prefix: netip.MustParsePrefix("203.0.113.1/32")})
	assigned := make(chan int64, 4)
	sim.OnAssign(func(fip, server int64, ip netip.Prefix) { assigned <- server })
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)

	cfg := config.Config{StateDir: t.TempDir(), Metrics: config.Metrics{Listen: "off"}}
	cfg.API = config.API{Endpoint: ts.URL + "/v1", Token: token}
	g := config.DefaultGroup()
	g.Name, g.FloatingIPs, g.Insecure, g.Bind = "web", []string{"vip"}, true, "10.0.0.2"
	cfg.Groups = []config.Group{g}

	host := &fakeHost{set: map[string][]netip.Prefix{}}
	var logs syncBuffer
	var membership *soloMembership
	newMembership := func(g config.Group, id int64, bind string, peers []string, log *slog.Logger, _ *metrics.Metrics) (floatingip.Membership, error) {
		assert.Equal(t, "10.0.0.2", bind)
		assert.Empty(t, peers)
		membership = &soloMembership{self: id, changes: make(chan struct{}, 1)}
		return membership, nil
	}
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := New(cfg, Options{
		Notify:   func(string) error { return nil },
		Watchdog: func() (time.Duration, error) { return 0, nil },
		Log:      log,
		// Alone in its group, the holder has nobody to hand over to: the
		// handover must end at once, not at this timeout.
		HandoverTimeout: time.Hour,
	})
	require.NoError(t, err)
	wire := func(ctx context.Context, sum metadata.Summary) (Components, error) {
		api := newAPIClient(cfg, a.Metrics(), log, "test")
		return Components{Groups: func(ctx context.Context) ([]Group, error) {
			return newGroups(ctx, groupsParams{cfg: cfg, self: sum.InstanceID, api: api, host: host,
				newMembership: newMembership, metrics: a.Metrics(), log: log})
		}}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, &fakeMetadata{sum: metadata.Summary{InstanceID: self}}, wire) }()

	t0 := time.Now()
	select {
	case got := <-assigned:
		t.Logf("assigned after %s", time.Since(t0))
		assert.Equal(t, self, got)
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	}
	// Fast path: the address is configured before the API is asked.
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32")}, host.get("group:web"))
	st := a.Status()
	require.Len(t, st.Groups, 1)
	gs, ok := st.Groups[0].(floatingip.Status)
	require.True(t, ok)
	assert.Equal(t, "web", gs.Name)

	t0 = time.Now()
	cancel()
	require.NoError(t, <-done)
	t.Logf("stop took %s", time.Since(t0))
	assert.True(t, membership.left, "the group did not leave its membership")
	assert.Contains(t, logs.String(), "no peer could take over: floating IPs stay here")
	assert.NotContains(t, logs.String(), "handover failed")
}

func TestNewGossipOfGroup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600))

	t.Run("missing key file", func(t *testing.T) {
		g := config.Group{Name: "web", KeyFile: filepath.Join(dir, "nope"), Port: port}
		_, err := newGossip(g, 1, "127.0.0.1", nil, slog.New(slog.DiscardHandler), nil)
		require.ErrorContains(t, err, "read gossip key")
	})
	t.Run("no key and not insecure", func(t *testing.T) {
		_, err := newGossip(config.Group{Name: "web", Port: port}, 1, "127.0.0.1", nil, slog.New(slog.DiscardHandler), nil)
		require.ErrorContains(t, err, "no key file")
	})
	t.Run("encrypted on loopback", func(t *testing.T) {
		g := config.Group{Name: "web", KeyFile: keyFile, Port: port}
		m, err := newGossip(g, 1, "127.0.0.1", nil, slog.New(slog.DiscardHandler), nil)
		require.NoError(t, err)
		defer m.Leave(context.Background())
		members := m.Members()
		require.Len(t, members, 1)
		assert.Equal(t, int64(1), members[0].ID)
	})
}

func TestPeerAddresses(t *testing.T) {
	own := []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.9")}
	tests := []struct {
		name  string
		peers []string
		bind  string
		want  []string
	}{
		{"none", nil, "", nil},
		{"others kept", []string{"10.0.0.3", "10.0.0.4"}, "", []string{"10.0.0.3", "10.0.0.4"}},
		{"own address dropped", []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}, "", []string{"10.0.0.3", "10.0.0.4"}},
		{"own alias dropped", []string{"10.0.0.9", "10.0.0.3"}, "", []string{"10.0.0.3"}},
		{"own address with port dropped", []string{"10.0.0.2:7946", "10.0.0.3:7946"}, "", []string{"10.0.0.3:7946"}},
		{"bind dropped", []string{"10.1.0.5", "10.0.0.3"}, "10.1.0.5", []string{"10.0.0.3"}},
		{"duplicates dropped", []string{"10.0.0.3", "10.0.0.3"}, "", []string{"10.0.0.3"}},
		{"names kept", []string{"db-2.internal"}, "", []string{"db-2.internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, peerAddresses(tt.peers, tt.bind, own))
		})
	}
}

// TestGroupsLeavesNoFIFOReader checks that creating the groups
// starts no keepalived notify_fifo reader (issue 11 defect 3): when a later
// group fails to start and the creation is retried, a reader started by
// the factory would be orphaned and two readers would share the FIFO. The
// reader belongs to the group's Run.
func TestNewGroupsLeavesNoFIFOReader(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "notify.fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	cfg := config.Config{StateDir: t.TempDir(), API: config.API{Endpoint: "http://127.0.0.1:1/v1", Token: "t"}}
	ka := config.DefaultGroup()
	ka.Name, ka.FloatingIPs, ka.Mode, ka.KeepalivedFIFO = "ka", []string{"vip"}, config.ModeKeepalived, fifo
	ml := config.DefaultGroup()
	ml.Name, ml.FloatingIPs, ml.Insecure, ml.Bind = "ml", []string{"vip2"}, true, "10.0.0.2"
	cfg.Groups = []config.Group{ka, ml}
	p := groupsParams{
		cfg: cfg, self: 1, api: newAPIClient(cfg, nil, nil, "test"), host: &fakeHost{set: map[string][]netip.Prefix{}},
		newMembership: func(config.Group, int64, string, []string, *slog.Logger, *metrics.Metrics) (floatingip.Membership, error) {
			return nil, errors.New("bind: address not available")
		},
		log: slog.New(slog.DiscardHandler),
	}
	for range 2 { // the agent retries a failed creation
		_, err := newGroups(t.Context(), p)
		require.Error(t, err)
	}
	// A reader would open the FIFO asynchronously: give it the chance.
	assert.Never(t, func() bool {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return false // ENXIO: no reader
		}
		f.Close()
		return true
	}, 300*time.Millisecond, 10*time.Millisecond, "a notify fifo reader runs without its group")
}

// TestGroupLogsNameOnce checks that the group's lines carry group=web once:
// the wiring gave the membership a logger that already had it, and the
// membership added it again (issue 11 defect 6).
func TestGroupLogsNameOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := config.Config{StateDir: t.TempDir(), API: config.API{Endpoint: "http://127.0.0.1:1/v1", Token: "t"}}
	g := config.DefaultGroup()
	g.Name, g.FloatingIPs, g.Insecure, g.Bind, g.Port = "web", []string{"vip"}, true, "127.0.0.1", port
	cfg.Groups = []config.Group{g}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	gs, err := newGroups(t.Context(), groupsParams{cfg: cfg, self: 1, api: newAPIClient(cfg, nil, log, "test"),
		host: &fakeHost{set: map[string][]netip.Prefix{}}, newMembership: newGossip, log: log})
	require.NoError(t, err)
	require.Len(t, gs, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- gs[0].Run(ctx) }()
	cancel() // Run leaves the membership: a gossip line is logged
	require.NoError(t, <-done)
	require.NotEmpty(t, logs.String())
	for l := range strings.Lines(logs.String()) {
		assert.LessOrEqual(t, strings.Count(l, "group=web"), 1, "line: %s", l)
	}
}

// TestGroupAdapterGossip: a reload finds a group's *Gossip also under the
// read share's wrapper (issue 14), to change its keys and peers in place.
func TestGroupAdapterGossip(t *testing.T) {
	gs := &floatingip.Gossip{}
	share := floatingip.NewReadShare(7)
	tests := []struct {
		name string
		m    floatingip.Membership
		want bool
	}{
		{"gossip", gs, true},
		{"wrapped gossip", share.Membership(gs), true},
		{"keepalived mode", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := groupAdapter{m: tc.m}.gossip()
			assert.Equal(t, tc.want, ok)
			if tc.want {
				assert.Same(t, gs, got)
			}
		})
	}
}
