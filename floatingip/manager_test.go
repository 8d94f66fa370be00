package floatingip

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestManagerSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cloud := newFakeCloud(0,
			FloatingIP{ID: 1, Name: "a", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.1"), ServerID: 7},
			FloatingIP{ID: 2, Name: "b", Type: "ipv6", IP: netip.MustParseAddr("2001:db8::"), Network: netip.MustParsePrefix("2001:db8::/64"), ServerID: 7},
			FloatingIP{ID: 3, Name: "c", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.3"), ServerID: 8},
			FloatingIP{ID: 4, Name: "grp", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.4"), ServerID: 7},
		)
		host := &fakeHost{}
		m := newTestManager(t, ManagerConfig{Self: 7, IPv6Host: testIPv6Host, Interval: 20 * time.Minute, Exclude: func(f FloatingIP) bool { return f.ID == 4 }}, cloud, host, nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- m.Run(ctx) }()
		synctest.Wait()
		assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/32"), netip.MustParsePrefix("2001:db8::1/64")}, host.configured(ManagerOwner))
		cloud.mu.Lock()
		assert.Equal(t, 1, cloud.gets)
		cloud.mu.Unlock()

		// A move away is seen on Trigger without waiting for the interval.
		cloud.mu.Lock()
		cloud.fips[1].ServerID = 8
		cloud.mu.Unlock()
		m.Trigger()
		synctest.Wait()
		assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}, host.configured(ManagerOwner))

		// A failing API read never removes anything.
		cloud.mu.Lock()
		cloud.failGet = errors.New("unavailable")
		cloud.mu.Unlock()
		m.Trigger()
		synctest.Wait()
		assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}, host.configured(ManagerOwner))
		cloud.mu.Lock()
		cloud.failGet = nil
		cloud.mu.Unlock()

		// Steady state: a few reads per hour.
		cloud.mu.Lock()
		cloud.gets = 0
		cloud.mu.Unlock()
		time.Sleep(2 * time.Hour)
		cloud.mu.Lock()
		gets := cloud.gets
		cloud.mu.Unlock()
		assert.GreaterOrEqual(t, gets, 5)
		assert.LessOrEqual(t, gets, 9)
		cancel()
		require.NoError(t, <-done)
	})
}

func TestPeerChecks(t *testing.T) {
	tests := []struct {
		status string
		found  bool
		err    error
		want   PeerState
	}{
		{"running", true, nil, PeerUp},
		{"off", true, nil, PeerDown},
		{"", false, nil, PeerDown},
		{"", false, errors.New("boom"), PeerUnknown},
	}
	for _, tt := range tests {
		pc := ServerStatusPeerCheck(func(context.Context, int64) (string, bool, error) { return tt.status, tt.found, tt.err })
		got, _ := pc(t.Context(), 2)
		assert.Equal(t, tt.want, got, "status %q found %v", tt.status, tt.found)
	}
	down := ProbePeerCheck(func(int64) (Probe, error) { return func(context.Context) error { return errors.New("x") }, nil })
	s, err := down(t.Context(), 2)
	require.NoError(t, err)
	assert.Equal(t, PeerDown, s)
}

// TestNewManagerReplacesNothing: the manager takes the timings it is given
// and refuses missing ones instead of defaulting them (defaults live in
// package config; issue 11).
func TestNewManagerReplacesNothing(t *testing.T) {
	for _, cfg := range []ManagerConfig{{RetryMin: time.Second}, {Interval: time.Minute}} {
		_, err := NewManager(cfg, nil, nil, nil)
		assert.Error(t, err, "%+v", cfg)
	}
	m, err := NewManager(ManagerConfig{Interval: time.Minute, RetryMin: 2 * time.Second}, nil, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, time.Minute, m.cfg.Interval)
	assert.Equal(t, 2*time.Second, m.cfg.RetryMin)
}
