package netconf

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/metadata"
)

// inNS runs fn on an OS thread switched into ns. Sockets that fn creates
// stay in ns and may be used from any goroutine afterwards. If switching
// back fails, the thread stays locked and the runtime discards it.
func inNS(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	require.NoError(t, <-errc)
}

// egressRig is a server namespace with a public NIC (96: MAC, primary
// 203.0.113.5/24 and 2001:db8:1::5/64, the image's default routes via
// 203.0.113.1 and fe80::1 at metric 0, floating IPs 198.51.100.10/32 and
// 2001:db8:ff::1/64) and a private NIC (86:00:00 MAC, 10.0.0.2/8), wired to
// an "internet" namespace that routes the floating IPs back and runs an echo
// server on 192.0.2.80 and 2001:db8:80::80 that reports each client's
// source address.
type egressRig struct {
	host, inet *testNS
	pub, priv  string
	sources    chan netip.Addr
	port       int
}

var (
	fip4     = netip.MustParseAddr("198.51.100.10")
	fip6     = netip.MustParseAddr("2001:db8:ff::1")
	primary4 = netip.MustParseAddr("203.0.113.5")
	primary6 = netip.MustParseAddr("2001:db8:1::5")
	remote4  = netip.MustParseAddr("192.0.2.80")
	remote6  = netip.MustParseAddr("2001:db8:1:80::80") // primary6 is the longer prefix match (RFC 6724 rule 8)
)

func newEgressRig(t *testing.T) *egressRig {
	host, inet := newNS(t), newNS(t)
	r := &egressRig{host: host, inet: inet, sources: make(chan netip.Addr, 16)}
	r.pub = host.addVeth(t, inet, "96:00:00:7e:00:01")
	r.priv = host.addVeth(t, inet, "86:00:00:7e:00:02")

	addAddr := func(n *testNS, dev, prefix string) {
		t.Helper()
		l, err := n.h.LinkByName(dev)
		require.NoError(t, err)
		p := netip.MustParsePrefix(prefix)
		bits := 32
		if p.Addr().Is6() {
			bits = 128
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}, Flags: unix.IFA_F_NODAD}
		require.NoError(t, n.h.AddrAdd(l, a))
		require.NoError(t, n.h.LinkSetUp(l))
	}
	route := func(n *testNS, dev, dst, gw string) {
		t.Helper()
		l, err := n.h.LinkByName(dev)
		require.NoError(t, err)
		d := netip.MustParsePrefix(dst)
		bits := 32
		if d.Addr().Is6() {
			bits = 128
		}
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: d.Addr().AsSlice(), Mask: net.CIDRMask(d.Bits(), bits)},
			Gw: netip.MustParseAddr(gw).AsSlice(), Protocol: unix.RTPROT_BOOT}
		require.NoError(t, n.h.RouteAdd(rt))
	}

	addAddr(host, r.pub, "203.0.113.5/24")
	addAddr(host, r.pub, "2001:db8:1::5/64")
	addAddr(host, r.priv, "10.0.0.2/8")
	route(host, r.pub, "0.0.0.0/0", "203.0.113.1")
	route(host, r.pub, "::/0", "fe80::1")
	addAddr(host, r.pub, fip4.String()+"/32")
	addAddr(host, r.pub, fip6.String()+"/64")

	// addVeth names the peer like the NIC, with hcp for hcn.
	inetPub := strings.Replace(r.pub, "hcn", "hcp", 1)
	addAddr(inet, inetPub, "203.0.113.1/24")
	addAddr(inet, inetPub, "2001:db8:1::1/64")
	addAddr(inet, inetPub, "fe80::1/64")
	addAddr(inet, "lo", remote4.String()+"/32")
	addAddr(inet, "lo", remote6.String()+"/128")
	route(inet, inetPub, fip4.String()+"/32", "203.0.113.5")
	route(inet, inetPub, "2001:db8:ff::/64", "2001:db8:1::5")

	var (
		ln  net.Listener
		err error
	)
	inNS(t, inet.ns, func() { ln, err = net.Listen("tcp", ":0") })
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	r.port = ln.Addr().(*net.TCPAddr).Port
	// Exits when the test closes the listener.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.sources <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			go func() {
				defer c.Close()
				s := bufio.NewScanner(c)
				for s.Scan() {
					fmt.Fprintln(c, s.Text())
				}
			}()
		}
	}()
	return r
}

// dial opens a connection from the server namespace to the echo server and
// returns it with the source address the server saw.
func (r *egressRig) dial(t *testing.T, remote netip.Addr) (net.Conn, netip.Addr) {
	t.Helper()
	var (
		c   net.Conn
		err error
	)
	inNS(t, r.host.ns, func() {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(remote, uint16(r.port)).String(), 10*time.Second)
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, <-r.sources
}

// echo checks that c still carries data both ways.
func echo(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := fmt.Fprintln(c, msg)
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, msg+"\n", line)
}

// foreignRoutes renders the routes of both families that are neither
// hc-agent's nor the kernel's, so a test can check they were not touched.
func (r *egressRig) foreignRoutes(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := r.host.h.RouteListFiltered(f, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		require.NoError(t, err)
		for _, rt := range routes {
			// Kernel routes come and go with addresses and link-local
			// autoconfiguration; what matters is everyone else's.
			if rt.Protocol != RouteProtocol && rt.Protocol != unix.RTPROT_KERNEL {
				out = append(out, fmt.Sprintf("%s via %s dev %d proto %d metric %d src %s", routeDst(rt), routeGw(rt), rt.LinkIndex, rt.Protocol, rt.Priority, routeSrc(rt)))
			}
		}
	}
	slices.Sort(out)
	return out
}

// egressRoutesIn renders our egress routes.
func (r *egressRig) egressRoutesIn(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := r.host.h.RouteListFiltered(f, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		require.NoError(t, err)
		for _, rt := range routes {
			if isEgressRoute(rt) {
				out = append(out, EgressRoute{Dst: routeDst(rt), Gw: routeGw(rt), Src: routeSrc(rt)}.String())
			}
		}
	}
	return out
}

// sourceFor asks the kernel which source address it would use for dst.
func (r *egressRig) sourceFor(t *testing.T, dst string) (netip.Addr, int) {
	t.Helper()
	routes, err := r.host.h.RouteGet(netip.MustParseAddr(dst).AsSlice())
	require.NoError(t, err)
	require.NotEmpty(t, routes)
	return routeSrc(routes[0]), routes[0].LinkIndex
}

func TestNetnsEgress(t *testing.T) {
	ctx := context.Background()
	r := newEgressRig(t)
	h := &countingNL{nlHandle: r.host.h}
	before := r.foreignRoutes(t)
	pub, err := r.host.h.LinkByName(r.pub)
	require.NoError(t, err)
	priv, err := r.host.h.LinkByName(r.priv)
	require.NoError(t, err)

	// A connection opened before egress starts.
	old4, src := r.dial(t, remote4)
	require.Equal(t, primary4, src)
	old6, src := r.dial(t, remote6)
	require.Equal(t, primary6, src)

	want := Egress{V4: fip4, V6: fip6}
	changes, err := PlanEgress(ctx, h, want)
	require.NoError(t, err)
	assert.Len(t, changes, 18)
	assert.Zero(t, h.writes.Load(), "Plan writes nothing")

	res, err := ApplyEgress(ctx, h, want)
	require.NoError(t, err)
	assert.Equal(t, 18, res.Writes)
	assert.Contains(t, r.egressRoutesIn(t), "0.0.0.0/1 via 203.0.113.1 src 198.51.100.10 metric 1")
	assert.Contains(t, r.egressRoutesIn(t), "8000::/1 via fe80::1 src 2001:db8:ff::1 metric 1")

	// New connections leave from the floating IPs; open ones keep working.
	_, src = r.dial(t, remote4)
	assert.Equal(t, fip4, src)
	_, src = r.dial(t, remote6)
	assert.Equal(t, fip6, src)
	echo(t, old4, "still here v4")
	echo(t, old6, "still here v6")

	// Link-local (metadata) and the private network are not egress.
	got, ix := r.sourceFor(t, "169.254.169.254")
	assert.NotEqual(t, fip4, got)
	assert.Equal(t, pub.Attrs().Index, ix)
	_, ix = r.sourceFor(t, "10.1.2.3")
	assert.Equal(t, priv.Attrs().Index, ix, "the private network's route is more specific")

	// Idempotent, and the image's routes are untouched.
	h.writes.Store(0)
	res, err = ApplyEgress(ctx, h, want)
	require.NoError(t, err)
	assert.Zero(t, res.Writes)
	assert.Zero(t, h.writes.Load())
	assert.Equal(t, before, r.foreignRoutes(t))

	// The private-network reconciler leaves egress routes alone.
	nets := []metadata.PrivateNetwork{{
		IP: netip.MustParseAddr("10.0.0.2"), InterfaceNum: 1, MACAddress: mustMAC("86:00:00:7e:00:02"), NetworkID: 7,
		Network: netip.MustParsePrefix("10.0.0.0/8"), Subnet: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
	}}
	var owned Owned
	_, err = Apply(ctx, h, Desired(nets, Options{}), &owned)
	require.NoError(t, err)
	assert.Len(t, r.egressRoutesIn(t), 18)

	// Egress ends: our routes go, new connections use the primary again,
	// open ones keep working.
	res, err = ApplyEgress(ctx, h, Egress{})
	require.NoError(t, err)
	assert.Equal(t, 18, res.Writes)
	assert.Empty(t, r.egressRoutesIn(t))
	_, src = r.dial(t, remote4)
	assert.Equal(t, primary4, src)
	_, src = r.dial(t, remote6)
	assert.Equal(t, primary6, src)
	echo(t, old4, "after v4")
	echo(t, old6, "after v6")
}

func TestNetnsEgressLeavesForeignRoutes(t *testing.T) {
	ctx := context.Background()
	r := newEgressRig(t)
	pub, err := r.host.h.LinkByName(r.pub)
	require.NoError(t, err)
	// A VPN's def1 route with our destination and metric.
	vpn := &netlink.Route{LinkIndex: pub.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(0, 0, 0, 0).To4(), Mask: net.CIDRMask(1, 32)},
		Gw: net.IPv4(203, 0, 113, 1).To4(), Protocol: unix.RTPROT_STATIC, Priority: EgressMetric}
	require.NoError(t, r.host.h.RouteAdd(vpn))
	before := r.foreignRoutes(t)

	res, err := ApplyEgress(ctx, r.host.h, Egress{V4: fip4})
	require.ErrorContains(t, err, "egress route 0.0.0.0/1 via 203.0.113.1 src 198.51.100.10 metric 1 dev "+r.pub+": a route of protocol 4 has the same destination and metric; left alone")
	assert.Equal(t, 15, res.Writes, "the other prefixes are applied")
	assert.Equal(t, before, r.foreignRoutes(t))

	// Our routes with a changed source are replaced in place; theirs stays.
	res, err = ApplyEgress(ctx, r.host.h, Egress{V4: primary4})
	require.Error(t, err)
	assert.Equal(t, 15, res.Writes)
	assert.Equal(t, before, r.foreignRoutes(t))
	assert.Contains(t, r.egressRoutesIn(t), "192.0.0.0/2 via 203.0.113.1 src 203.0.113.5 metric 1")
	assert.NotContains(t, strings.Join(r.egressRoutesIn(t), "\n"), fip4.String())

	res, err = ApplyEgress(ctx, r.host.h, Egress{})
	require.NoError(t, err)
	assert.Equal(t, 15, res.Writes)
	assert.Equal(t, before, r.foreignRoutes(t), "the VPN route stays")
}

func TestNetnsEgressAddressRemoved(t *testing.T) {
	ctx := context.Background()
	r := newEgressRig(t)
	_, err := ApplyEgress(ctx, r.host.h, Egress{V4: fip4})
	require.NoError(t, err)
	require.Len(t, r.egressRoutesIn(t), 16)

	// The group releases the floating IP: removing the address makes the
	// kernel drop the IPv4 routes that use it as source at once.
	pub, err := r.host.h.LinkByName(r.pub)
	require.NoError(t, err)
	require.NoError(t, r.host.h.AddrDel(pub, &netlink.Addr{IPNet: &net.IPNet{IP: fip4.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	assert.Empty(t, r.egressRoutesIn(t))
	res, err := ApplyEgress(ctx, r.host.h, Egress{})
	require.NoError(t, err)
	assert.Zero(t, res.Writes)
}

func TestNetnsEgressWithoutDefaultRoute(t *testing.T) {
	ctx := context.Background()
	r := newEgressRig(t)
	_, err := ApplyEgress(ctx, r.host.h, Egress{V4: fip4})
	require.NoError(t, err)
	routes, err := r.host.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	require.NoError(t, err)
	for _, rt := range routes {
		if rt.Protocol == unix.RTPROT_BOOT && routeDst(rt).Bits() == 0 {
			require.NoError(t, r.host.h.RouteDel(&rt))
		}
	}
	res, err := ApplyEgress(ctx, r.host.h, Egress{V4: fip4})
	require.ErrorContains(t, err, "egress from 198.51.100.10: no default route via a gateway on a public NIC")
	assert.Zero(t, res.Writes)
	assert.Len(t, r.egressRoutesIn(t), 16, "a missing default route is not \"no egress\"")
}

func TestNetnsEgressController(t *testing.T) {
	ctx := context.Background()
	r := newEgressRig(t)
	var logs strings.Builder
	c := NewEgressController(r.host.h, []string{"web", "api"}, slog.New(slog.NewTextHandler(&logs, nil)))
	other := netip.MustParseAddr("198.51.100.20")
	pub, err := r.host.h.LinkByName(r.pub)
	require.NoError(t, err)
	require.NoError(t, r.host.h.AddrAdd(pub, &netlink.Addr{IPNet: &net.IPNet{IP: other.AsSlice(), Mask: net.CIDRMask(32, 32)}}))

	// The second group in the configuration holds: its address.
	require.NoError(t, c.Set(ctx, "api", []netip.Addr{other}))
	assert.Equal(t, Egress{V4: other}, c.Current())
	// The first group takes its IPs too: it wins, in configuration order.
	require.NoError(t, c.Set(ctx, "web", []netip.Addr{fip4, fip6}))
	assert.Equal(t, Egress{V4: fip4, V6: fip6}, c.Current())
	src, _ := r.sourceFor(t, remote4.String())
	assert.Equal(t, fip4, src)
	// It gives them up: back to the second group's.
	require.NoError(t, c.Set(ctx, "web", nil))
	assert.Equal(t, Egress{V4: other}, c.Current())
	require.NoError(t, c.Set(ctx, "api", nil))
	assert.Equal(t, Egress{}, c.Current())
	assert.Empty(t, r.egressRoutesIn(t))
	assert.Equal(t, 4, strings.Count(logs.String(), "egress source changed"), logs.String())

	// A group that a reload started (or that turned egress on) is not in
	// the order the controller was built with: it still egresses, after
	// the configured ones.
	require.NoError(t, c.Set(ctx, "new", []netip.Addr{other}))
	assert.Equal(t, Egress{V4: other}, c.Current())
	require.NoError(t, c.Set(ctx, "web", []netip.Addr{fip4}))
	assert.Equal(t, Egress{V4: fip4}, c.Current(), "configured groups first")
	require.NoError(t, c.Set(ctx, "web", nil))
	require.NoError(t, c.Set(ctx, "new", nil))
	assert.Equal(t, Egress{}, c.Current())
	logs.Reset()

	// A failure is logged once until it changes, and reported each time.
	routes, err := r.host.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	require.NoError(t, err)
	for _, rt := range routes {
		if rt.Protocol == unix.RTPROT_BOOT {
			require.NoError(t, r.host.h.RouteDel(&rt))
		}
	}
	require.Error(t, c.Set(ctx, "web", []netip.Addr{fip4}))
	require.Error(t, c.Reconcile(ctx))
	assert.Equal(t, 1, strings.Count(logs.String(), "egress not applied"), logs.String())
}
