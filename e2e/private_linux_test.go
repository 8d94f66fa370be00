package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// privateLink returns the server's link with the given MAC ("" if none).
func (w *world) privateLink(server string, mac string) netlink.Link {
	links, err := w.c.Server(server).NetlinkHandle().LinkList()
	require.NoError(w.t, err)
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac {
			return l
		}
	}
	return nil
}

// hasRoute reports whether the server routes dst via gw.
func (w *world) hasRoute(server string, dst netip.Prefix, gw netip.Addr) bool {
	routes, err := w.c.Server(server).NetlinkHandle().RouteList(nil, netlink.FAMILY_V4)
	require.NoError(w.t, err)
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == dst.String() && r.Gw.Equal(gw.AsSlice()) {
			return true
		}
	}
	return false
}

// checkPrivate asserts the server's kernel state for every private network
// its metadata lists: NIC up with MTU 1450, address, route to the network
// via the gateway.
func (w *world) checkPrivate(server string) {
	w.t.Helper()
	_, nets := w.c.Server(server).Metadata()
	for _, n := range nets {
		l := w.privateLink(server, n.MACAddress.String())
		require.NotNil(w.t, l, "%s: no NIC with MAC %s", server, n.MACAddress)
		assert.Equal(w.t, 1450, l.Attrs().MTU, "%s %s MTU", server, l.Attrs().Name)
		assert.NotZero(w.t, l.Attrs().Flags&(1<<0), "%s %s is not up", server, l.Attrs().Name)
		assert.True(w.t, w.hasAddr(server, n.IP), "%s: no address %s", server, n.IP)
		assert.True(w.t, w.hasRoute(server, n.Network, n.Gateway), "%s: no route %s via %s", server, n.Network, n.Gateway)
	}
}

// TestPrivateNetworks runs hc-agent on two servers without failover groups:
// private networks are configured on boot, a hot-attached network and alias
// IPs follow the metadata. The subtests share one world and run in order.
func TestPrivateNetworks(t *testing.T) {
	w := newWorld(t, spec{servers: []string{"alpha", "beta"}})
	t0 := time.Now()
	w.startAgents()

	t.Run("boot", func(t *testing.T) {
		for _, s := range w.spec.servers {
			_, nets := w.c.Server(s).Metadata()
			require.Len(t, nets, 1)
			waitFor(t, 15*time.Second, 20*time.Millisecond, s+" private address", func() bool { return w.hasAddr(s, nets[0].IP) })
			w.checkPrivate(s)
		}
		t.Logf("private networks configured %s after the agents started", time.Since(t0).Round(time.Millisecond))
		// What matters to users: the servers reach each other privately.
		_, nb := w.c.Server("beta").Metadata()
		out, err := w.c.Server("alpha").Exec(w.ctx, "ping", "-c1", "-W2", nb[0].IP.String())
		require.NoError(t, err, "alpha cannot ping beta privately: %s", out)
	})

	t.Run("hot-attach", func(t *testing.T) {
		t0 := time.Now()
		require.NoError(t, w.c.AttachNetwork("beta", "net-b"))
		_, nets := w.c.Server("beta").Metadata()
		require.Len(t, nets, 2)
		took := waitFor(t, 15*time.Second, 20*time.Millisecond, "hot-attached address", func() bool { return w.hasAddr("beta", nets[1].IP) })
		w.checkPrivate("beta")
		t.Logf("hot-attached net-b configured on beta %s after the attach (poll %s)", took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	})

	alias := netip.MustParseAddr("10.0.0.50")
	t.Run("alias added", func(t *testing.T) {
		require.NoError(t, w.c.SetAliasIPs("alpha", "net-a", []netip.Addr{alias}))
		took := waitFor(t, 15*time.Second, 20*time.Millisecond, "alias ip configured", func() bool { return w.hasAddr("alpha", alias) })
		t.Logf("alias %s configured on alpha %s after the metadata change", alias, took.Round(time.Millisecond))
		w.checkPrivate("alpha")
	})

	t.Run("alias removed", func(t *testing.T) {
		require.NoError(t, w.c.SetAliasIPs("alpha", "net-a", nil))
		took := waitFor(t, 15*time.Second, 20*time.Millisecond, "alias ip removed", func() bool { return !w.hasAddr("alpha", alias) })
		t.Logf("alias %s removed from alpha %s after the metadata change", alias, took.Round(time.Millisecond))
		w.checkPrivate("alpha")
	})
}
