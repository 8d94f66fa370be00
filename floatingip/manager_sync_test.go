package floatingip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mgrCloud is a Cloud for the Manager's tests: it lists fips, fails while
// err is set, and records when each list call came.
type mgrCloud struct {
	mu    sync.Mutex
	fips  []FloatingIP
	err   error
	calls []time.Time
}

func (c *mgrCloud) ListFloatingIPs(context.Context, string) ([]FloatingIP, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, time.Now())
	if c.err != nil {
		return nil, c.err
	}
	return slices.Clone(c.fips), nil
}

func (c *mgrCloud) GetFloatingIP(context.Context, string) (FloatingIP, error) {
	return FloatingIP{}, errors.New("mgrCloud: not used by the manager")
}

func (c *mgrCloud) Assign(context.Context, int64, int64) (Action, error) {
	return Action{}, errors.New("mgrCloud: not used by the manager")
}

func (c *mgrCloud) WaitAction(context.Context, int64) (Action, error) {
	return Action{}, errors.New("mgrCloud: not used by the manager")
}

func (c *mgrCloud) set(err error, fips ...FloatingIP) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	if fips != nil {
		c.fips = fips
	}
}

// callTimes returns when the list calls came, relative to t0.
func (c *mgrCloud) callTimes(t0 time.Time) []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, at := range c.calls {
		out = append(out, at.Sub(t0))
	}
	return out
}

func gaps(ts []time.Duration) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i]-ts[i-1])
	}
	return out
}

func countIn(ts []time.Duration, from, to time.Duration) int {
	n := 0
	for _, d := range ts {
		if d >= from && d < to {
			n++
		}
	}
	return n
}

// startManager runs m until the test's bubble ends and returns a stop
// function that checks Run's result.
func startManager(t *testing.T, m *Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

var (
	fipA = FloatingIP{ID: 1, Name: "a", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.1"), ServerID: 7}
	fipB = FloatingIP{ID: 2, Name: "b", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.2"), ServerID: 8}
	fipC = FloatingIP{ID: 3, Name: "c", Type: "ipv6", IP: netip.MustParseAddr("2001:db8:1::"), Network: netip.MustParsePrefix("2001:db8:1::/64"), ServerID: 7}
	fipG = FloatingIP{ID: 4, Name: "grp", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.4"), ServerID: 7}
)

// TestManagerInterval checks that steady-state reads come a jittered
// interval apart: within ±20%, not all alike, a few per hour.
func TestManagerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cloud := &mgrCloud{fips: []FloatingIP{fipA}}
		m := newTestManager(t, ManagerConfig{Self: 7, IPv6Host: testIPv6Host}, cloud, &fakeHost{}, discardLogger())
		t0 := time.Now()
		stop := startManager(t, m)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		stop()

		calls := cloud.callTimes(t0)
		require.NotEmpty(t, calls)
		assert.Equal(t, time.Duration(0), calls[0], "first read at start")
		gs := gaps(calls)
		for i, g := range gs {
			assert.GreaterOrEqual(t, g, 16*time.Minute, "gap %d", i)
			assert.LessOrEqual(t, g, 24*time.Minute, "gap %d", i)
		}
		assert.Greater(t, len(slices.Compact(slices.Sorted(slices.Values(gs)))), len(gs)/2, "gaps are jittered")
		for h := range 24 {
			n := countIn(calls, time.Duration(h)*time.Hour, time.Duration(h+1)*time.Hour)
			assert.LessOrEqual(t, n, 4, "reads in hour %d", h)
			assert.GreaterOrEqual(t, n, 2, "reads in hour %d", h)
		}
	})
}

// TestManagerNextDelay checks the schedule: the interval when healthy,
// RetryMin doubling up to the interval after failures, all within ±20%.
func TestManagerNextDelay(t *testing.T) {
	m := newTestManager(t, ManagerConfig{Interval: 20 * time.Minute}, nil, nil, nil)
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 20 * time.Minute},
		{1, 5 * time.Second},
		{2, 10 * time.Second},
		{3, 20 * time.Second},
		{4, 40 * time.Second},
		{8, 640 * time.Second},
		{9, 20 * time.Minute},
		{10, 20 * time.Minute},
		{1000, 20 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.failures), func(t *testing.T) {
			lo, hi := tc.want*8/10, tc.want*12/10
			seen := map[time.Duration]bool{}
			for range 200 {
				d := m.nextDelay(tc.failures)
				require.GreaterOrEqual(t, d, lo)
				require.LessOrEqual(t, d, hi)
				seen[d] = true
			}
			assert.Greater(t, len(seen), 1, "jittered")
		})
	}
}

// syncLog records what the manager's hooks reported.
type syncLog struct {
	mu     sync.Mutex
	events []string
	errs   []error
}

func (l *syncLog) config(cfg ManagerConfig) ManagerConfig {
	cfg.OnSync = func(f FloatingIP, configured, here bool) {
		l.add(fmt.Sprintf("sync %s configured=%v here=%v", f.Name, configured, here))
	}
	cfg.OnGone = func(f FloatingIP) { l.add("gone " + f.Name) }
	cfg.AfterSync = func(_ time.Duration, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.errs = append(l.errs, err)
	}
	return cfg
}

func (l *syncLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, s)
}

// take returns and clears the events and sync errors so far.
func (l *syncLog) take() ([]string, []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev, errs := l.events, l.errs
	l.events, l.errs = nil, nil
	return ev, errs
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// count is how often sub occurs in what was written.
func (b *lockedBuffer) count(sub string) int { return strings.Count(b.String(), sub) }

// TestManagerBackoff checks that a failing API is retried after 5 s,
// doubling up to the interval, that the error is logged once, that nothing
// is removed meanwhile, and that the interval returns after recovery.
func TestManagerBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cloud := &mgrCloud{fips: []FloatingIP{fipA}}
		host := &fakeHost{}
		var logs lockedBuffer
		var sl syncLog
		m := newTestManager(t, sl.config(ManagerConfig{Self: 7, IPv6Host: testIPv6Host}), cloud, host, slog.New(slog.NewTextHandler(&logs, nil)))
		t0 := time.Now()
		stop := startManager(t, m)
		synctest.Wait()
		require.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32")}, host.configured(ManagerOwner))

		// The API fails from 1h on for 3 hours.
		time.Sleep(time.Hour - time.Since(t0))
		cloud.set(errors.New("service unavailable"))
		time.Sleep(3 * time.Hour)
		assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32")}, host.configured(ManagerOwner), "a failed read removes nothing")
		cloud.set(nil)
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		stop()

		calls := cloud.callTimes(t0)
		// The first failing read is the first one after 1h.
		i := slices.IndexFunc(calls, func(d time.Duration) bool { return d >= time.Hour })
		require.GreaterOrEqual(t, i, 0)
		gs := gaps(calls[i:])
		want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640}
		for k, w := range want {
			w *= time.Second
			require.Greater(t, len(gs), k)
			assert.GreaterOrEqual(t, gs[k], w*8/10, "retry %d", k+1)
			assert.LessOrEqual(t, gs[k], w*12/10, "retry %d", k+1)
		}
		for k := len(want); k < len(gs); k++ {
			assert.GreaterOrEqual(t, gs[k], 16*time.Minute, "capped retry or interval %d", k+1)
			assert.LessOrEqual(t, gs[k], 24*time.Minute, "capped retry or interval %d", k+1)
		}
		outage := countIn(calls, time.Hour, 4*time.Hour)
		assert.LessOrEqual(t, outage, 8+3*4, "reads during a 3h outage")
		assert.LessOrEqual(t, countIn(calls, 2*time.Hour, 3*time.Hour), 4, "reads per hour once backed off")
		assert.LessOrEqual(t, countIn(calls, 5*time.Hour, 6*time.Hour), 4, "reads per hour after recovery")

		assert.Equal(t, 1, strings.Count(logs.String(), `msg="sync floating ips"`), "a repeating error is logged once")
		assert.Equal(t, 1, strings.Count(logs.String(), `msg="floating ips synced again"`))
		_, errs := sl.take()
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
				assert.ErrorContains(t, err, "service unavailable")
			}
		}
		assert.Equal(t, outage, failed, "AfterSync sees every failed sync")
		assert.Len(t, errs, len(calls), "AfterSync after every sync")
	})
}

// TestManagerOnSync checks what the hooks report over a sequence of API
// states, with a host that cannot tell what it configured (the manager
// reports what it asked for) and with the Applier (it reports what the
// Applier says).
func TestManagerOnSync(t *testing.T) {
	type step struct {
		fips    []FloatingIP
		apiErr  error
		want    []string
		wantErr bool
	}
	moved := fipA
	moved.ServerID = 8
	steps := []step{
		{
			fips: []FloatingIP{fipA, fipB, fipC, fipG},
			want: []string{
				"sync a configured=true here=true",
				"sync b configured=false here=false",
				"sync c configured=true here=true",
			},
		},
		{apiErr: errors.New("unavailable"), wantErr: true},
		{
			fips: []FloatingIP{moved, fipC},
			want: []string{
				"sync a configured=false here=false",
				"sync c configured=true here=true",
				"gone b",
			},
		},
		{
			fips: []FloatingIP{fipC},
			want: []string{"sync c configured=true here=true", "gone a"},
		},
	}
	hosts := []struct {
		name string
		host func() Host
	}{
		{"plain host", func() Host { return &fakeHost{} }},
		// A host that tells what it configured, as netconf's
		// FloatingIPApplier does (configuredHost).
		{"host that reports what it configured", func() Host { return &reportingHost{} }},
	}
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				host := h.host()
				cloud := &mgrCloud{}
				var sl syncLog
				m := newTestManager(t, sl.config(ManagerConfig{Self: 7, IPv6Host: testIPv6Host, Exclude: func(f FloatingIP) bool { return f.ID == fipG.ID }}), cloud, host, discardLogger())
				for i, st := range steps {
					cloud.set(st.apiErr, st.fips...)
					err := m.Sync(t.Context())
					if st.wantErr {
						assert.Error(t, err, "step %d", i)
					} else {
						assert.NoError(t, err, "step %d", i)
					}
					got, errs := sl.take()
					assert.Equal(t, st.want, got, "step %d", i)
					require.Len(t, errs, 1, "step %d: AfterSync once", i)
					assert.Equal(t, err, errs[0])
				}
			})
		})
	}
	t.Run("host without local route reports not configured", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// As netconf's applier: the IPv6 address is in the kernel but
			// its local route did not appear, so it is not configured.
			host := &reportingHost{unrouted: true}
			cloud := &mgrCloud{fips: []FloatingIP{fipA, fipC}}
			var sl syncLog
			m := newTestManager(t, sl.config(ManagerConfig{Self: 7, IPv6Host: testIPv6Host}), cloud, host, discardLogger())
			assert.ErrorIs(t, m.Sync(t.Context()), errUnrouted)
			got, _ := sl.take()
			assert.Equal(t, []string{
				"sync a configured=true here=true",
				"sync c configured=false here=true",
			}, got)
		})
	})
	t.Run("plain host failing reports not configured", func(t *testing.T) {
		cloud := &mgrCloud{fips: []FloatingIP{fipA}}
		var sl syncLog
		m := newTestManager(t, sl.config(ManagerConfig{Self: 7, IPv6Host: testIPv6Host}), cloud, failingHost{}, discardLogger())
		assert.Error(t, m.Sync(t.Context()))
		got, _ := sl.take()
		assert.Equal(t, []string{"sync a configured=false here=true"}, got)
	})
}

// errUnrouted is reportingHost's error for an IPv6 address without its
// local route.
var errUnrouted = errors.New("no local route")

// reportingHost is a Host that tells which addresses it configured
// (configuredHost); with unrouted, IPv6 addresses are set but do not
// count as configured, and Set fails with errUnrouted.
type reportingHost struct {
	mu       sync.Mutex
	unrouted bool
	set      map[string][]netip.Prefix
}

func (h *reportingHost) Set(_ context.Context, owner string, ps []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.set == nil {
		h.set = map[string][]netip.Prefix{}
	}
	h.set[owner] = slices.Clone(ps)
	if h.unrouted && slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr().Is6() }) {
		return errUnrouted
	}
	return nil
}

func (h *reportingHost) Configured(ip netip.Addr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.unrouted && ip.Is6() {
		return false
	}
	for _, ps := range h.set {
		if slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr() == ip }) {
			return true
		}
	}
	return false
}

type failingHost struct{}

func (failingHost) Set(context.Context, string, []netip.Prefix) error {
	return errors.New("netlink down")
}
