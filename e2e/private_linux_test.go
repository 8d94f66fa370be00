package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
)

// privateLink returns the server's link with the given MAC (nil if none).
func (w *world) privateLink(t *testing.T, server string, mac string) netlink.Link {
	links, err := w.c.Server(server).NetlinkHandle().LinkList()
	require.NoError(t, err)
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac {
			return l
		}
	}
	return nil
}

// hasRoute reports whether the server routes dst via gw.
func (w *world) hasRoute(t *testing.T, server string, dst netip.Prefix, gw netip.Addr) bool {
	routes, err := w.c.Server(server).NetlinkHandle().RouteList(nil, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == dst.String() && r.Gw.Equal(gw.AsSlice()) {
			return true
		}
	}
	return false
}

// privateProblems compares the server's kernel state with every private
// network its metadata lists (NIC up with MTU 1450, address and alias IPs,
// route to the network via the gateway) and lists what differs.
func (w *world) privateProblems(t *testing.T, server string) []string {
	var out []string
	_, nets := w.c.Server(server).Metadata()
	for _, n := range nets {
		l := w.privateLink(t, server, n.MACAddress.String())
		if l == nil {
			out = append(out, fmt.Sprintf("%s: no NIC with MAC %s", server, n.MACAddress))
			continue
		}
		if mtu := l.Attrs().MTU; mtu != 1450 {
			out = append(out, fmt.Sprintf("%s %s: MTU %d, want 1450", server, l.Attrs().Name, mtu))
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			out = append(out, fmt.Sprintf("%s %s: not up", server, l.Attrs().Name))
		}
		for _, ip := range append([]netip.Addr{n.IP}, n.AliasIPs...) {
			if !w.hasAddr(server, ip) {
				out = append(out, fmt.Sprintf("%s: no address %s", server, ip))
			}
		}
		if !w.hasRoute(t, server, n.Network, n.Gateway) {
			out = append(out, fmt.Sprintf("%s: no route %s via %s", server, n.Network, n.Gateway))
		}
	}
	return out
}

// checkPrivate asserts that the server's kernel state matches its private
// networks (see privateProblems).
func (w *world) checkPrivate(t *testing.T, server string) {
	t.Helper()
	assert.Empty(t, w.privateProblems(t, server))
}

// waitPrivate waits until the server's kernel state matches its private
// networks and returns how long that took. The agent configures a NIC in
// several netlink calls, so no single one of them means done.
func (w *world) waitPrivate(t *testing.T, server string) time.Duration {
	t.Helper()
	const timeout = 15 * time.Second
	deadline := time.Now().Add(timeout)
	return waitFor(t, timeout+time.Second, 20*time.Millisecond, server+" private networks configured", func() bool {
		problems := w.privateProblems(t, server)
		if len(problems) > 0 && time.Now().After(deadline) {
			t.Fatalf("private networks not configured after %s: %v", timeout, problems)
		}
		return len(problems) == 0
	})
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
			w.waitPrivate(t, s)
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
		took := w.waitPrivate(t, "beta")
		t.Logf("hot-attached net-b configured on beta %s after the attach (poll %s)", took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	})

	alias := netip.MustParseAddr("10.0.0.50")
	t.Run("alias added", func(t *testing.T) {
		require.NoError(t, w.c.SetAliasIPs("alpha", "net-a", []netip.Addr{alias}))
		took := waitFor(t, 15*time.Second, 20*time.Millisecond, "alias ip configured", func() bool { return w.hasAddr("alpha", alias) })
		t.Logf("alias %s configured on alpha %s after the metadata change", alias, took.Round(time.Millisecond))
		w.checkPrivate(t, "alpha")
	})

	t.Run("alias removed", func(t *testing.T) {
		require.NoError(t, w.c.SetAliasIPs("alpha", "net-a", nil))
		took := waitFor(t, 15*time.Second, 20*time.Millisecond, "alias ip removed", func() bool { return !w.hasAddr("alpha", alias) })
		t.Logf("alias %s removed from alpha %s after the metadata change", alias, took.Round(time.Millisecond))
		w.checkPrivate(t, "alpha")
	})
}
