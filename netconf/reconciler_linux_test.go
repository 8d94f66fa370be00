package netconf

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/metadata"
)

// fakeSource is a metadata Source whose answer the test changes.
type fakeSource struct {
	mu    sync.Mutex
	nets  []metadata.PrivateNetwork
	err   error
	calls int
}

func (s *fakeSource) PrivateNetworks(context.Context) ([]metadata.PrivateNetwork, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	return slices.Clone(s.nets), nil
}

func (s *fakeSource) set(nets []metadata.PrivateNetwork, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nets, s.err = nets, err
}

func (s *fakeSource) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// recordHandler is a slog.Handler that keeps the messages at or above Warn.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		h.msgs = append(h.msgs, r.Message)
		h.mu.Unlock()
	}
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// rig runs a Reconciler over a fake host inside a synctest bubble.
type rig struct {
	f       *fakeNL
	src     *fakeSource
	r       *Reconciler
	logs    *recordHandler
	events  chan<- netlink.LinkUpdate
	mu      sync.Mutex
	results []error
	stop    func()
}

func startRig(t *testing.T, f *fakeNL, nets []metadata.PrivateNetwork, opts Options, ropts ...ReconcilerOption) *rig {
	t.Helper()
	rg := &rig{f: f, src: &fakeSource{nets: nets}, logs: &recordHandler{}}
	subscribed := make(chan chan<- netlink.LinkUpdate, 1)
	rg.r = New(opts, rg.src, f, slog.New(rg.logs), append([]ReconcilerOption{
		WithSubscribe(func(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error {
			subscribed <- ch
			go func() {
				<-done
				close(ch)
			}()
			return nil
		}),
		WithOnReconcile(func(_ Result, err error) {
			rg.mu.Lock()
			rg.results = append(rg.results, err)
			rg.mu.Unlock()
		}),
	}, ropts...)...)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rg.r.Run(ctx) }()
	rg.events = <-subscribed
	rg.stop = func() {
		cancel()
		require.NoError(t, <-done)
	}
	synctest.Wait()
	return rg
}

func (rg *rig) reconciles() int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return len(rg.results)
}

func (rg *rig) lastErr() error {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	return rg.results[len(rg.results)-1]
}

func (rg *rig) linkEvent(typ uint16, name, mac string, index int) {
	rg.events <- netlink.LinkUpdate{
		Header: unix.NlMsghdr{Type: typ},
		Link:   &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mustMAC(mac), Index: index}},
	}
}

func TestReconcilerHotplugWaitsForMetadata(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNL()
		f.addLink("ens10", "86:00:00:2a:7d:e0", 1500, false)
		rg := startRig(t, f, []metadata.PrivateNetwork{nwTest1()}, Options{})
		defer rg.stop()
		assert.Contains(t, f.String(), "addr 10.0.0.4/32 dev ens10\n")

		// A NIC is hot-added; metadata lags it by 3 s.
		ix := f.addLink("ens11", "86:00:00:2a:7d:e1", 1500, false)
		rg.linkEvent(unix.RTM_NEWLINK, "ens11", "86:00:00:2a:7d:e1", ix)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		assert.NotContains(t, f.String(), "192.168.0.2")
		callsWhileWaiting := rg.src.callCount()
		assert.GreaterOrEqual(t, callsWhileWaiting, 6, "metadata is re-read with a short backoff")

		rg.src.set(both(), nil)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Contains(t, f.String(), "addr 192.168.0.2/32 dev ens11\n", "configured within a second of metadata showing it")
		assert.Contains(t, f.String(), "route 192.168.0.0/16 via 192.168.0.1 dev ens11 proto 71\n")

		// Once seen, the fast retries stop: only the poll reads metadata.
		calls := rg.src.callCount()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		assert.Equal(t, calls, rg.src.callCount())
	})
}

func TestReconcilerHotplugGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeNL()
		rg := startRig(t, f, nil, Options{PollInterval: time.Hour})
		defer rg.stop()
		ix := f.addLink("ens11", "86:00:00:2a:7d:e1", 1500, false)
		rg.linkEvent(unix.RTM_NEWLINK, "ens11", "86:00:00:2a:7d:e1", ix)
		time.Sleep(hotplugWindow + time.Second)
		synctest.Wait()
		assert.Equal(t, 1, rg.logs.count("metadata does not list hot-added private nic"))
		calls := rg.src.callCount()
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, calls, rg.src.callCount(), "no more fast retries")
	})
}

func TestReconcilerMetadataOutageRemovesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		rg := startRig(t, f, both(), Options{})
		defer rg.stop()
		require.NoError(t, rg.lastErr())
		require.Equal(t, configuredBoth, f.String())

		rg.src.set(nil, errors.New("metadata unavailable"))
		// Someone deletes one of our routes during the outage: the last known
		// good metadata still restores it.
		require.NoError(t, f.RouteDel(toNetlinkRoute(f.index("ens11"), Desired(both(), Options{}).Networks[1].Routes[1])))
		rg.r.Trigger()
		synctest.Wait()
		assert.ErrorContains(t, rg.lastErr(), "read private networks from metadata: metadata unavailable")
		assert.Equal(t, configuredBoth, f.String())
		got, ok := rg.r.LastKnownGood()
		assert.True(t, ok)
		assert.Equal(t, both(), got)

		// Metadata comes back without an alias IP: now it goes.
		n1 := nwTest1()
		n1.AliasIPs = n1.AliasIPs[:1]
		rg.src.set([]metadata.PrivateNetwork{n1, nwTest2()}, nil)
		time.Sleep(DefaultPollInterval + DefaultPollInterval/10)
		synctest.Wait()
		assert.NoError(t, rg.lastErr())
		assert.NotContains(t, f.String(), "10.0.0.4")
	})
}

func TestReconcilerOutageFromStartConfiguresNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		f.addAddr("ens10", "10.0.0.2/24")
		before := f.String()
		src := &fakeSource{err: errors.New("connection refused")}
		r := New(Options{}, src, f, slog.New(&recordHandler{}))
		_, err := r.ReconcileOnce(t.Context())
		require.Error(t, err)
		_, writes := f.counts()
		assert.Zero(t, writes)
		assert.Equal(t, before, f.String())
		_, ok := r.LastKnownGood()
		assert.False(t, ok)
	})
}

func TestReconcilerLinkRemovedDropsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		rg := startRig(t, f, both(), Options{})
		defer rg.stop()
		require.Len(t, rg.r.Owned().Addresses, 4)
		n := rg.reconciles()

		ix := f.index("ens11")
		f.delLink("ens11")
		rg.linkEvent(unix.RTM_DELLINK, "ens11", "86:00:00:2a:7d:e1", ix)
		synctest.Wait()
		assert.Equal(t, n+1, rg.reconciles(), "a removed link triggers one reconcile")
		assert.Len(t, rg.r.Owned().Addresses, 3)
	})
}

func TestReconcilerBlackholeLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := host()
		f.addRoute("169.254.169.254/32", "10.0.0.1", "ens10", unix.RTPROT_DHCP, 1024)
		var blackholed []bool
		src := &fakeSource{nets: both()}
		logs := &recordHandler{}
		r := New(Options{}, src, f, slog.New(logs), WithOnReconcile(func(res Result, _ error) {
			blackholed = append(blackholed, res.MetadataBlackholed)
		}))
		for range 3 {
			r.reconcile(t.Context())
		}
		assert.Equal(t, []bool{true, true, true}, blackholed)
		assert.Equal(t, 1, logs.count("metadata service is routed through a private nic"))
	})
}

func TestReconcilerOwnedFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := t.TempDir() + "/netconf-owned.json"
		f := host()
		r := New(Options{}, &fakeSource{nets: both()}, f, slog.New(&recordHandler{}), WithOwnedFile(path),
			WithSubscribe(closeOnDone))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)
		o, err := LoadOwned(path)
		require.NoError(t, err)
		assert.Len(t, o.Addresses, 4)

		// A restarted agent loads the record and removes a dropped alias.
		n1 := nwTest1()
		n1.AliasIPs = nil
		r2 := New(Options{}, &fakeSource{nets: []metadata.PrivateNetwork{n1, nwTest2()}}, f, slog.New(&recordHandler{}), WithOwnedFile(path),
			WithSubscribe(closeOnDone))
		ctx, cancel = context.WithCancel(t.Context())
		go func() { done <- r2.Run(ctx) }()
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)
		assert.NotContains(t, f.String(), "10.0.0.3")
		assert.NotContains(t, f.String(), "10.0.0.4")
		o, err = LoadOwned(path)
		require.NoError(t, err)
		assert.Len(t, o.Addresses, 2)
	})
}

// closeOnDone is a subscription that sends nothing and ends with done, as
// netlink's does.
func closeOnDone(ch chan<- netlink.LinkUpdate, done <-chan struct{}) error {
	go func() {
		<-done
		close(ch)
	}()
	return nil
}
