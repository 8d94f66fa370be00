package netconf

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/internal/nstest"
)

// nextMatch reads ch until an update matches; the deadline only ends a
// broken test.
func nextMatch[T any](t *testing.T, ch <-chan T, what string, match func(T) bool) T {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u, ok := <-ch:
			require.True(t, ok, "%s: channel closed", what)
			if match(u) {
				return u
			}
		case <-deadline:
			t.Fatalf("no %s", what)
		}
	}
}

// waitClosed drains ch until it is closed; the deadline only ends a broken
// test.
func waitClosed[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("%s not closed", what)
		}
	}
}

// isOpen reports whether k has its socket open.
func (k *KernelEvents) isOpen() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.sock != nil
}

// TestNetnsKernelEvents: one socket in a namespace hands link, address and
// route events to the subscriptions of their kind, each parsed as netlink's
// own subscriptions would; a subscription ends with its done channel, the
// socket with the last one, and a failed socket ends them all and can be
// subscribed to again.
func TestNetnsKernelEvents(t *testing.T) {
	ns, h := nstest.New(t)
	k := NewKernelEvents(&ns)
	errs := make(chan error, 16)
	onErr := func(err error) { errs <- err }

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ctx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	addrs2 := make(chan netlink.AddrUpdate, 64)
	routes := make(chan netlink.RouteUpdate, 64)
	require.NoError(t, k.Links(onErr)(links, ctx.Done()))
	require.NoError(t, k.Addrs(onErr)(addrs, ctx.Done()))
	require.NoError(t, k.Addrs(onErr)(addrs2, ctx2.Done()))
	require.NoError(t, k.Routes(onErr)(routes, ctx.Done()))

	require.NoError(t, h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ev0", MTU: 1450}, PeerName: "ev1"}))
	ev0, err := h.LinkByName("ev0")
	require.NoError(t, err)
	idx := ev0.Attrs().Index
	require.NoError(t, h.LinkSetUp(ev0))

	t.Run("links", func(t *testing.T) {
		u := nextMatch(t, links, "ev0 up", func(u netlink.LinkUpdate) bool {
			return u.Attrs().Name == "ev0" && u.Attrs().Flags&net.FlagUp != 0
		})
		assert.Equal(t, uint16(unix.RTM_NEWLINK), u.Header.Type)
		assert.Equal(t, idx, u.Attrs().Index)
		assert.Equal(t, int32(idx), u.Index)
		assert.Equal(t, 1450, u.Attrs().MTU)
		assert.Equal(t, ev0.Attrs().HardwareAddr, u.Attrs().HardwareAddr)
	})

	v4 := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.9.0.1").To4(), Mask: net.CIDRMask(24, 32)}}
	v6 := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	require.NoError(t, h.AddrAdd(ev0, v4))
	require.NoError(t, h.AddrAdd(ev0, v6))

	t.Run("addresses, to every address subscription", func(t *testing.T) {
		for _, ch := range []chan netlink.AddrUpdate{addrs, addrs2} {
			u := nextMatch(t, ch, "10.9.0.1 added", func(u netlink.AddrUpdate) bool { return u.LinkAddress.IP.Equal(v4.IP) })
			assert.True(t, u.NewAddr)
			assert.Equal(t, idx, u.LinkIndex)
			assert.Equal(t, "10.9.0.1/24", u.LinkAddress.String())
			u = nextMatch(t, ch, "2001:db8::1 added", func(u netlink.AddrUpdate) bool { return u.LinkAddress.IP.Equal(v6.IP) })
			assert.True(t, u.NewAddr)
			assert.Equal(t, "2001:db8::1/64", u.LinkAddress.String())
			assert.NotZero(t, u.Flags&unix.IFA_F_NODAD)
		}
		require.NoError(t, h.AddrDel(ev0, v6))
		for _, ch := range []chan netlink.AddrUpdate{addrs, addrs2} {
			u := nextMatch(t, ch, "2001:db8::1 deleted", func(u netlink.AddrUpdate) bool { return !u.NewAddr })
			assert.Equal(t, "2001:db8::1/64", u.LinkAddress.String())
		}
	})

	t.Run("IPv4 routes, with their table", func(t *testing.T) {
		dst := &net.IPNet{IP: net.ParseIP("10.8.0.0").To4(), Mask: net.CIDRMask(16, 32)}
		gw := net.ParseIP("10.9.0.2").To4()
		require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: dst, Gw: gw, Priority: 7}))
		require.NoError(t, h.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: dst, Gw: gw, Table: 1000}))
		u := nextMatch(t, routes, "main-table route", func(u netlink.RouteUpdate) bool {
			return u.Dst != nil && u.Dst.String() == "10.8.0.0/16" && u.Table == unix.RT_TABLE_MAIN
		})
		assert.Equal(t, uint16(unix.RTM_NEWROUTE), u.Type)
		assert.Equal(t, netlink.FAMILY_V4, u.Family)
		assert.Equal(t, idx, u.LinkIndex)
		assert.True(t, u.Gw.Equal(gw))
		assert.Equal(t, 7, u.Priority)
		nextMatch(t, routes, "table 1000 route", func(u netlink.RouteUpdate) bool {
			return u.Dst != nil && u.Dst.String() == "10.8.0.0/16" && u.Table == 1000
		})
	})

	t.Run("one subscription ends, the others go on", func(t *testing.T) {
		cancel2()
		waitClosed(t, addrs2, "the ended address subscription")
		require.NoError(t, h.AddrDel(ev0, v4))
		nextMatch(t, addrs, "10.9.0.1 deleted", func(u netlink.AddrUpdate) bool { return !u.NewAddr && u.LinkAddress.IP.Equal(v4.IP) })
		assert.True(t, k.isOpen())
	})

	t.Run("a failed socket ends every subscription", func(t *testing.T) {
		k.mu.Lock()
		k.sock.Close() // what a read error does
		k.mu.Unlock()
		waitClosed(t, links, "links")
		waitClosed(t, addrs, "addresses")
		waitClosed(t, routes, "routes")
		assert.False(t, k.isOpen())
		for range 3 {
			select {
			case err := <-errs:
				assert.ErrorContains(t, err, "kernel events")
			case <-time.After(10 * time.Second):
				t.Fatal("a subscription was not told of the failure")
			}
		}
	})

	t.Run("subscribed again, and closed with the last subscription", func(t *testing.T) {
		ctx3, cancel3 := context.WithCancel(t.Context())
		again := make(chan netlink.AddrUpdate, 64)
		require.NoError(t, k.Addrs(onErr)(again, ctx3.Done()))
		require.NoError(t, h.AddrAdd(ev0, v4))
		nextMatch(t, again, "10.9.0.1 added again", func(u netlink.AddrUpdate) bool { return u.NewAddr && u.LinkAddress.IP.Equal(v4.IP) })
		cancel3()
		waitClosed(t, again, "the last subscription")
		assert.False(t, k.isOpen(), "the socket closes before the last channel")
		assert.Empty(t, errs, "a clean stop is no error")
	})
}
