package netconf

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"
	"github.com/hc-agent/hc-agent/internal/nstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// Integration tests in network namespaces that the tests create. Every
// namespace is unnamed: it lives as long as the test holds its handle, and
// closing the handle in t.Cleanup destroys it with every link inside. No
// traffic is sent anywhere; RouteGet is a FIB lookup inside the namespace.

var linkSeq atomic.Int32

// testNS is a network namespace created by a test, with a netlink handle in it.
type testNS struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

// addVeth creates a veth pair whose end in n has mac and whose peer is in
// peer (up, so the NIC has carrier). It returns the NIC's name.
func (n *testNS) addVeth(t testing.TB, peer *testNS, mac string) string {
	t.Helper()
	seq := linkSeq.Add(1)
	name := fmt.Sprintf("hcn%d-%d", os.Getpid()%100000, seq)
	peerName := fmt.Sprintf("hcp%d-%d", os.Getpid()%100000, seq)
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, HardwareAddr: mustMAC(mac), MTU: 1500},
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(int(peer.ns)),
	}
	require.NoError(t, n.h.LinkAdd(v))
	pl, err := peer.h.LinkByName(peerName)
	require.NoError(t, err)
	require.NoError(t, peer.h.LinkSetUp(pl))
	return name
}

// countingNL counts the calls made through it.
type countingNL struct {
	nlHandle
	writes atomic.Int32
	reads  atomic.Int32
}

func (c *countingNL) LinkList() ([]netlink.Link, error) {
	c.reads.Add(1)
	return c.nlHandle.LinkList()
}
func (c *countingNL) AddrList(l netlink.Link, family int) ([]netlink.Addr, error) {
	c.reads.Add(1)
	return c.nlHandle.AddrList(l, family)
}
func (c *countingNL) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	c.reads.Add(1)
	return c.nlHandle.RouteListFiltered(family, filter, mask)
}
func (c *countingNL) RouteGet(dst net.IP) ([]netlink.Route, error) {
	c.reads.Add(1)
	return c.nlHandle.RouteGet(dst)
}

func (c *countingNL) LinkSetMTU(l netlink.Link, mtu int) error {
	c.writes.Add(1)
	return c.nlHandle.LinkSetMTU(l, mtu)
}
func (c *countingNL) LinkSetUp(l netlink.Link) error {
	c.writes.Add(1)
	return c.nlHandle.LinkSetUp(l)
}
func (c *countingNL) AddrReplace(l netlink.Link, a *netlink.Addr) error {
	c.writes.Add(1)
	return c.nlHandle.AddrReplace(l, a)
}
func (c *countingNL) AddrDel(l netlink.Link, a *netlink.Addr) error {
	c.writes.Add(1)
	return c.nlHandle.AddrDel(l, a)
}
func (c *countingNL) RouteReplace(r *netlink.Route) error {
	c.writes.Add(1)
	return c.nlHandle.RouteReplace(r)
}
func (c *countingNL) RouteDel(r *netlink.Route) error {
	c.writes.Add(1)
	return c.nlHandle.RouteDel(r)
}

// state renders the IPv4 configuration of the NICs with the given names as
// sorted text, in the fake's format, using real netlink dumps.
func (n *testNS) state(t testing.TB, names map[string]string) string {
	t.Helper()
	links, err := n.h.LinkList()
	require.NoError(t, err)
	alias := func(ix int) (string, bool) {
		for _, l := range links {
			if l.Attrs().Index == ix {
				a, ok := names[l.Attrs().Name]
				return a, ok
			}
		}
		return "", false
	}
	var lines []string
	for _, l := range links {
		a, ok := names[l.Attrs().Name]
		if !ok {
			continue
		}
		st := "down"
		if l.Attrs().Flags&net.FlagUp != 0 {
			st = "up"
		}
		lines = append(lines, fmt.Sprintf("link %s %s mtu %d %s", a, l.Attrs().HardwareAddr, l.Attrs().MTU, st))
	}
	addrs, err := n.h.AddrList(nil, netlink.FAMILY_V4)
	require.NoError(t, err)
	for _, ad := range addrs {
		if a, ok := alias(ad.LinkIndex); ok {
			lines = append(lines, fmt.Sprintf("addr %s dev %s", addrPrefix(ad), a))
		}
	}
	routes, err := n.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	require.NoError(t, err)
	for _, r := range routes {
		a, ok := alias(r.LinkIndex)
		if !ok || r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		s := "route " + routeDst(r).String()
		if gw := routeGw(r); gw.IsValid() {
			s += " via " + gw.String()
		}
		s += fmt.Sprintf(" dev %s proto %d", a, r.Protocol)
		if r.Priority != 0 {
			s += fmt.Sprintf(" metric %d", r.Priority)
		}
		lines = append(lines, s)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func withMAC(n metadata.PrivateNetwork, mac string) metadata.PrivateNetwork {
	n.MACAddress = mustMAC(mac)
	return n
}

func TestNetnsApply(t *testing.T) {
	ctx := context.Background()
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:01")
	e1 := host.addVeth(t, peers, "86:00:00:7a:00:02")
	names := map[string]string{e0: "ens10", e1: "ens11"}
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:01")
	n2 := withMAC(nwTest2(), "86:00:00:7a:00:02")
	h := &countingNL{nlHandle: host.h}
	var owned Owned

	// First apply configures everything.
	res, err := Apply(ctx, h, Desired([]metadata.PrivateNetwork{n1, n2}, Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, 12, res.Writes)
	assert.Equal(t, `addr 10.0.0.2/32 dev ens10
addr 10.0.0.3/32 dev ens10
addr 10.0.0.4/32 dev ens10
addr 192.168.0.2/32 dev ens11
link ens10 86:00:00:7a:00:01 mtu 1450 up
link ens11 86:00:00:7a:00:02 mtu 1450 up
route 10.0.0.0/8 via 10.0.0.1 dev ens10 proto 71
route 10.0.0.1/32 dev ens10 proto 71
route 192.168.0.0/16 via 192.168.0.1 dev ens11 proto 71
route 192.168.0.1/32 dev ens11 proto 71
`, host.state(t, names))

	// Second apply makes zero writes.
	h.writes.Store(0)
	res, err = Apply(ctx, h, Desired([]metadata.PrivateNetwork{n1, n2}, Options{}), &owned)
	require.NoError(t, err)
	assert.Empty(t, res.Changes)
	assert.Zero(t, h.writes.Load())

	// A restarted agent with no ownership record changes nothing either.
	var fresh Owned
	changes, err := Plan(ctx, h, Desired([]metadata.PrivateNetwork{n1, n2}, Options{}), fresh)
	require.NoError(t, err)
	assert.Empty(t, changes)
	res, err = Apply(ctx, h, Desired([]metadata.PrivateNetwork{n1, n2}, Options{}), &fresh)
	require.NoError(t, err)
	assert.Zero(t, h.writes.Load())
	assert.Empty(t, fresh.Addresses, "pre-existing addresses are not claimed")

	// Foreign address and route on the same NIC.
	l0, err := host.h.LinkByName(e0)
	require.NoError(t, err)
	require.NoError(t, host.h.AddrAdd(l0, toNetlinkAddr(netip.MustParsePrefix("10.9.9.9/32"))))
	require.NoError(t, host.h.RouteAdd(&netlink.Route{LinkIndex: l0.Attrs().Index, Dst: ipconv.IPNet(netip.MustParsePrefix("10.99.0.0/16")), Gw: net.ParseIP("10.0.0.1").To4(), Protocol: unix.RTPROT_STATIC}))

	// An alias IP is removed and the second network detached.
	n1b := n1
	n1b.AliasIPs = n1.AliasIPs[:1]
	res, err = Apply(ctx, h, Desired([]metadata.PrivateNetwork{n1b}, Options{}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"remove route 192.168.0.0/16 via 192.168.0.1 dev " + e1 + " (route of hc-agent no longer wanted)",
		"remove route 192.168.0.1/32 scope link dev " + e1 + " (route of hc-agent no longer wanted)",
		"remove address 10.0.0.4/32 dev " + e0 + " (address of hc-agent no longer in metadata)",
		"remove address 192.168.0.2/32 dev " + e1 + " (address of hc-agent on a detached network)",
	}, changeStrings(res.Changes))
	assert.Equal(t, `addr 10.0.0.2/32 dev ens10
addr 10.0.0.3/32 dev ens10
addr 10.9.9.9/32 dev ens10
link ens10 86:00:00:7a:00:01 mtu 1450 up
link ens11 86:00:00:7a:00:02 mtu 1450 up
route 10.0.0.0/8 via 10.0.0.1 dev ens10 proto 71
route 10.0.0.1/32 dev ens10 proto 71
route 10.99.0.0/16 via 10.0.0.1 dev ens10 proto 4
`, host.state(t, names))
}

func TestNetnsDHCPConfigurationIsDone(t *testing.T) {
	ctx := context.Background()
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:11")
	l0, err := host.h.LinkByName(e0)
	require.NoError(t, err)
	// What dhclient leaves: 10.0.0.2/24, MTU 1450, routes with proto dhcp.
	require.NoError(t, host.h.LinkSetMTU(l0, 1450))
	require.NoError(t, host.h.LinkSetUp(l0))
	require.NoError(t, host.h.AddrAdd(l0, toNetlinkAddr(netip.MustParsePrefix("10.0.0.2/24"))))
	ix := l0.Attrs().Index
	require.NoError(t, host.h.RouteAdd(&netlink.Route{LinkIndex: ix, Dst: ipconv.IPNet(netip.MustParsePrefix("10.0.0.1/32")), Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_DHCP, Priority: 1024}))
	require.NoError(t, host.h.RouteAdd(&netlink.Route{LinkIndex: ix, Dst: ipconv.IPNet(netip.MustParsePrefix("10.0.0.0/8")), Gw: net.ParseIP("10.0.0.1").To4(), Protocol: unix.RTPROT_DHCP, Priority: 1024}))
	names := map[string]string{e0: "ens10"}
	before := host.state(t, names)

	n1 := withMAC(nwTest1(), "86:00:00:7a:00:11")
	n1.AliasIPs = nil
	h := &countingNL{nlHandle: host.h}
	var owned Owned
	res, err := Apply(ctx, h, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
	require.NoError(t, err)
	assert.Empty(t, res.Changes)
	assert.Zero(t, h.writes.Load())
	assert.Equal(t, before, host.state(t, names))

	// Detach: nothing of DHCP's goes.
	res, err = Apply(ctx, h, Desired(nil, Options{}), &owned)
	require.NoError(t, err)
	assert.Empty(t, res.Changes)
	assert.Equal(t, before, host.state(t, names))
}

func TestNetnsMetadataBlackhole(t *testing.T) {
	ctx := context.Background()
	host, peers := newNS(t), newNS(t)
	pub := host.addVeth(t, peers, "96:00:00:7a:00:21")
	priv := host.addVeth(t, peers, "86:00:00:7a:00:22")
	lp, err := host.h.LinkByName(pub)
	require.NoError(t, err)
	require.NoError(t, host.h.LinkSetUp(lp))
	require.NoError(t, host.h.AddrAdd(lp, toNetlinkAddr(netip.MustParsePrefix("203.0.113.10/32"))))
	require.NoError(t, host.h.RouteAdd(&netlink.Route{LinkIndex: lp.Attrs().Index, Dst: ipconv.IPNet(netip.MustParsePrefix("172.31.1.1/32")), Scope: netlink.SCOPE_LINK}))
	require.NoError(t, host.h.RouteAdd(&netlink.Route{LinkIndex: lp.Attrs().Index, Gw: net.ParseIP("172.31.1.1").To4(), Protocol: unix.RTPROT_DHCP, Priority: 100}))
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:22")
	var owned Owned
	_, err = Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
	require.NoError(t, err)
	// The private DHCP server's bad route.
	lv, err := host.h.LinkByName(priv)
	require.NoError(t, err)
	require.NoError(t, host.h.RouteAdd(&netlink.Route{LinkIndex: lv.Attrs().Index, Dst: ipconv.IPNet(netip.MustParsePrefix("169.254.169.254/32")), Gw: net.ParseIP("10.0.0.1").To4(), Protocol: unix.RTPROT_DHCP, Priority: 1024}))

	res, err := Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
	require.NoError(t, err)
	assert.True(t, res.MetadataBlackholed)
	assert.Equal(t, priv, res.MetadataRoute.Dev)

	res, err = Apply(ctx, host.h, Desired([]metadata.PrivateNetwork{n1}, Options{PinMetadataRoute: true}), &owned)
	require.NoError(t, err)
	assert.Equal(t, []string{"add route 169.254.169.254/32 via 172.31.1.1 dev " + pub + " (metadata route pinned to the public gateway)"}, changeStrings(res.Changes))
	assert.False(t, res.MetadataBlackholed)
	assert.Equal(t, MetadataRoute{Dev: pub, MAC: "96:00:00:7a:00:21", Gw: netip.MustParseAddr("172.31.1.1"), Proto: "hc-agent"}, res.MetadataRoute)
}

// reconcilerRig runs a Reconciler in host against a fake metadata server on
// loopback, reached through the real metadata client.
type reconcilerRig struct {
	md   *metadatatest.Server
	r    *Reconciler
	done chan struct{}
	mu   sync.Mutex
	errs []error
	ran  chan struct{}
}

func startReconciler(t *testing.T, host *testNS, nets []metadata.PrivateNetwork, opts Options) *reconcilerRig {
	t.Helper()
	return startReconcilerWith(t, host, host.h, nets, opts)
}

func startReconcilerWith(t *testing.T, host *testNS, h nlHandle, nets []metadata.PrivateNetwork, opts Options) *reconcilerRig {
	t.Helper()
	rr := &reconcilerRig{md: metadatatest.New(t), done: make(chan struct{}), ran: make(chan struct{}, 1)}
	rr.md.SetPrivateNetworks(nets)
	client := metadata.New(metadata.WithEndpoint(rr.md.URL()), metadata.WithAttempts(1), metadata.WithTimeout(time.Second))
	rr.r = New(opts, client, h, slog.New(slog.DiscardHandler), WithNetns(host.ns),
		WithOnReconcile(func(_ Result, err error) {
			rr.mu.Lock()
			rr.errs = append(rr.errs, err)
			rr.mu.Unlock()
			select {
			case rr.ran <- struct{}{}:
			default:
			}
		}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(rr.done)
		assert.NoError(t, rr.r.Run(ctx))
	}()
	t.Cleanup(func() {
		cancel()
		<-rr.done
	})
	<-rr.ran // the first reconcile
	return rr
}

// waitReconcile returns the result of a reconcile that started after the
// call. A reconcile may be in flight (link events of the test's own setup
// cause some), so it triggers, waits for one to finish, triggers again and
// waits for the next: that one certainly started after the call.
func (rr *reconcilerRig) waitReconcile(t *testing.T) error {
	t.Helper()
	select {
	case <-rr.ran: // a reconcile that finished before the call
	default:
	}
	var err error
	for range 2 {
		rr.r.Trigger()
		select {
		case <-rr.ran:
		case <-time.After(10 * time.Second):
			t.Fatal("no reconcile within 10s of Trigger")
		}
		rr.mu.Lock()
		err = rr.errs[len(rr.errs)-1]
		rr.mu.Unlock()
	}
	return err
}

func TestNetnsHotplug(t *testing.T) {
	host, peers, stage := newNS(t), newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:31")
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:31")
	rr := startReconciler(t, host, []metadata.PrivateNetwork{n1}, Options{})
	assert.Contains(t, host.state(t, map[string]string{e0: "ens10"}), "addr 10.0.0.4/32 dev ens10\n")

	// A NIC is hot-added: created elsewhere and moved into the namespace;
	// metadata shows it only afterwards.
	e1 := stage.addVeth(t, peers, "86:00:00:7a:00:32")
	l1, err := stage.h.LinkByName(e1)
	require.NoError(t, err)
	require.NoError(t, stage.h.LinkSetNsFd(l1, int(host.ns)))
	n2 := withMAC(nwTest2(), "86:00:00:7a:00:32")
	rr.md.SetPrivateNetworks([]metadata.PrivateNetwork{n1, n2})
	shown := time.Now()

	names := map[string]string{e1: "ens11"}
	want := `addr 192.168.0.2/32 dev ens11
link ens11 86:00:00:7a:00:32 mtu 1450 up
route 192.168.0.0/16 via 192.168.0.1 dev ens11 proto 71
route 192.168.0.1/32 dev ens11 proto 71
`
	// Poll the kernel state with a short ticker, bounded by the 1 s the
	// issue allows from metadata showing the NIC.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Second)
	for got := ""; got != want; got = host.state(t, names) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("hot-added NIC not configured within 1s of metadata showing it:\n%s", host.state(t, names))
		}
	}
	t.Logf("hot-added NIC configured %v after metadata showed it", time.Since(shown).Round(time.Millisecond))
}

func TestNetnsMetadataOutageRemovesNothing(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:41")
	names := map[string]string{e0: "ens10"}
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:41")
	rr := startReconciler(t, host, []metadata.PrivateNetwork{n1}, Options{})
	configured := host.state(t, names)
	require.Contains(t, configured, "addr 10.0.0.3/32 dev ens10\n")

	for _, code := range []int{500, 404, metadatatest.Hangup} {
		rr.md.SetStatus(metadata.KeyPrivateNetworks, code, -1)
		assert.Error(t, rr.waitReconcile(t), "status %d", code)
		assert.Equal(t, configured, host.state(t, names), "status %d", code)
	}
	rr.md.SetStatus(metadata.KeyPrivateNetworks, 0, 0)
	rr.md.SetRaw(metadata.KeyPrivateNetworks, "- ip: [not an address\n")
	assert.Error(t, rr.waitReconcile(t))
	assert.Equal(t, configured, host.state(t, names))

	rr.md.SetPrivateNetworks([]metadata.PrivateNetwork{n1})
	assert.NoError(t, rr.waitReconcile(t))
	assert.Equal(t, configured, host.state(t, names))
}

func TestNetnsLinkRemovedDropsState(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:51")
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:51")
	rr := startReconciler(t, host, []metadata.PrivateNetwork{n1}, Options{})
	require.Len(t, rr.r.Owned().Addresses, 3)
	l0, err := host.h.LinkByName(e0)
	require.NoError(t, err)
	require.NoError(t, host.h.LinkDel(l0))
	require.NoError(t, rr.waitReconcile(t))
	assert.Empty(t, rr.r.Owned().Addresses)
	assert.False(t, slices.ContainsFunc(rr.r.Owned().Addresses, func(a OwnedAddress) bool { return a.MAC == "86:00:00:7a:00:51" }))
}

func TestNetnsRestartOverConfiguredNICChangesNothing(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:61")
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:61")
	var owned Owned
	_, err := Apply(context.Background(), host.h, Desired([]metadata.PrivateNetwork{n1}, Options{}), &owned)
	require.NoError(t, err)
	names := map[string]string{e0: "ens10"}
	before := host.state(t, names)

	// A new agent process: no ownership record in memory, link events of
	// the NIC, a few reconciles.
	h := &countingNL{nlHandle: host.h}
	rr := startReconcilerWith(t, host, h, []metadata.PrivateNetwork{n1}, Options{})
	require.NoError(t, rr.waitReconcile(t))
	assert.Zero(t, h.writes.Load())
	assert.Equal(t, before, host.state(t, names))
}

// newNS is a fresh network namespace for the test (see nstest.New).
func newNS(t testing.TB) *testNS {
	t.Helper()
	ns, h := nstest.New(t)
	return &testNS{ns: ns, h: h}
}

// On a real kernel the set-up and the Reconciler's own writes make the
// first reconciles read the kernel; after that a reconcile reads only
// metadata. A change that only the poll used to find, a new MTU, is put back
// from its link event, with the poll an hour away.
func TestNetnsQuietReconcileRestoresMTU(t *testing.T) {
	host, peers := newNS(t), newNS(t)
	e0 := host.addVeth(t, peers, "86:00:00:7a:00:71")
	n1 := withMAC(nwTest1(), "86:00:00:7a:00:71")
	h := &countingNL{nlHandle: host.h}
	rr := startReconcilerWith(t, host, h, []metadata.PrivateNetwork{n1}, Options{PollInterval: time.Hour})
	names := map[string]string{e0: "ens10"}
	want := host.state(t, names)
	require.Contains(t, want, "mtu 1450 up")

	quiet := false
	for range 10 {
		before := h.reads.Load()
		require.NoError(t, rr.waitReconcile(t))
		if h.reads.Load() == before {
			quiet = true
			break
		}
	}
	require.True(t, quiet, "every reconcile still reads the kernel after 10 rounds without a change")

	host.ip(t, "link", "set", "dev", e0, "mtu", "1400")
	host.waitState(t, names, want, "mtu set by someone else")
}
