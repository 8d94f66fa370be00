package netconf

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fakeNL is a stateful in-memory netlink that behaves like the kernel for the
// calls netconf makes (private networks and floating IP addresses), counts
// reads and writes, and renders its state as sorted text. Its clock is
// time.Now, so a test in a synctest bubble controls when the local route of
// a new IPv6 address appears.
type fakeNL struct {
	mu     sync.Mutex
	links  []netlink.LinkAttrs
	addrs  []netlink.Addr
	routes []netlink.Route
	// added is when each address was added, for the IPv6 local route.
	added map[netip.Prefix]time.Time
	// routeDelay is how long after an IPv6 address is added the kernel's
	// local route to it appears; negative means never. Recent kernels add
	// it within the add, older ones from a work queue after DAD.
	routeDelay time.Duration
	reads      int
	writes     int
	// fail makes the named method return the error (once per entry if
	// failOnce is set).
	fail     map[string]error
	failOnce bool
	// failAddr makes AddrReplace and AddrDel of one prefix fail.
	failAddr map[netip.Prefix]error
	// interrupt makes the next n dumps return netlink.ErrDumpInterrupted.
	interrupt int
}

var (
	_ nlHandle  = (*fakeNL)(nil)
	_ fipHandle = (*fakeNL)(nil)
)

func newFakeNL() *fakeNL {
	return &fakeNL{fail: map[string]error{}, failAddr: map[netip.Prefix]error{}, added: map[netip.Prefix]time.Time{}}
}

// addLink adds a link and returns its index.
func (f *fakeNL) addLink(name, mac string, mtu int, up bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		panic(err)
	}
	ix := len(f.links) + 2 // 1 is lo
	for _, l := range f.links {
		ix = max(ix, l.Index+1)
	}
	a := netlink.LinkAttrs{Index: ix, Name: name, HardwareAddr: hw, MTU: mtu}
	if up {
		a.Flags |= net.FlagUp
	}
	f.links = append(f.links, a)
	return ix
}

// delLink removes a link and everything on it, as the kernel does.
func (f *fakeNL) delLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ix := f.index(name)
	f.links = slices.DeleteFunc(f.links, func(l netlink.LinkAttrs) bool { return l.Index == ix })
	f.addrs = slices.DeleteFunc(f.addrs, func(a netlink.Addr) bool { return a.LinkIndex == ix })
	f.routes = slices.DeleteFunc(f.routes, func(r netlink.Route) bool { return r.LinkIndex == ix })
}

func (f *fakeNL) index(name string) int {
	for _, l := range f.links {
		if l.Name == name {
			return l.Index
		}
	}
	panic("no link " + name)
}

func (f *fakeNL) name(ix int) string {
	for _, l := range f.links {
		if l.Index == ix {
			return l.Name
		}
	}
	return fmt.Sprintf("if%d", ix)
}

// addAddr puts an address on a link as someone else (DHCP, image) would;
// "nodad" after the prefix sets IFA_F_NODAD ("2001:db8::1/64 nodad").
func (f *fakeNL) addAddr(dev, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fields := strings.Fields(s)
	p := netip.MustParsePrefix(fields[0])
	a := netlink.Addr{IPNet: ipconv.IPNet(p), LinkIndex: f.index(dev)}
	if slices.Contains(fields[1:], "nodad") {
		a.Flags |= unix.IFA_F_NODAD
	}
	f.addrs = append(f.addrs, a)
	f.added[p] = time.Now()
}

// delAddr removes an address as someone else would.
func (f *fakeNL) delAddr(dev, prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ix := netip.MustParsePrefix(prefix), f.index(dev)
	f.addrs = slices.DeleteFunc(f.addrs, func(a netlink.Addr) bool { return a.LinkIndex == ix && addrPrefix(a) == p })
}

// setRouteDelay sets routeDelay.
func (f *fakeNL) setRouteDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routeDelay = d
}

// addrState renders every address as "dev prefix[ nodad]", sorted.
func (f *fakeNL) addrState() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.addrs {
		out = append(out, f.name(a.LinkIndex)+" "+addrPrefix(a).String()+nodad(a))
	}
	slices.Sort(out)
	return out
}

func nodad(a netlink.Addr) string {
	if a.Flags&unix.IFA_F_NODAD != 0 {
		return " nodad"
	}
	return ""
}

// addRoute adds a route as someone else would. gw may be "".
func (f *fakeNL) addRoute(dst, gw, dev string, proto, metric int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := netlink.Route{
		LinkIndex: f.index(dev),
		Dst:       ipconv.IPNet(netip.MustParsePrefix(dst)),
		Protocol:  netlink.RouteProtocol(proto),
		Priority:  metric,
		Table:     unix.RT_TABLE_MAIN,
		Type:      unix.RTN_UNICAST,
	}
	if gw != "" {
		r.Gw = netip.MustParseAddr(gw).AsSlice()
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	f.routes = append(f.routes, r)
}

func (f *fakeNL) counts() (reads, writes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.writes
}

func (f *fakeNL) writeCount() int {
	_, w := f.counts()
	return w
}

// newFIPNL returns a host for the floating IP applier: eth0, the public NIC
// (96: MAC), and eth1, a private network NIC (86: MAC). Without public,
// eth0's MAC is not a 96: one and eth1 carries the IPv4 default route.
func newFIPNL(public bool) *fakeNL {
	f := newFakeNL()
	mac0 := "96:00:00:00:00:01"
	if !public {
		mac0 = "02:00:00:00:00:01"
	}
	f.addLink("eth0", mac0, 1500, true)
	f.addLink("eth1", "86:00:00:00:00:02", 1450, true)
	if !public {
		f.addRoute("0.0.0.0/0", "172.31.1.1", "eth1", unix.RTPROT_DHCP, 0)
	}
	return f
}

func (f *fakeNL) resetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads, f.writes = 0, 0
}

func (f *fakeNL) failure(method string) error {
	err := f.fail[method]
	if err != nil && f.failOnce {
		delete(f.fail, method)
	}
	return err
}

// String renders the state as sorted lines.
func (f *fakeNL) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, l := range f.links {
		state := "down"
		if l.Flags&net.FlagUp != 0 {
			state = "up"
		}
		lines = append(lines, fmt.Sprintf("link %s %s mtu %d %s", l.Name, l.HardwareAddr, l.MTU, state))
	}
	for _, a := range f.addrs {
		lines = append(lines, fmt.Sprintf("addr %s dev %s", addrPrefix(a), f.name(a.LinkIndex))+nodad(a))
	}
	for _, r := range f.routes {
		s := "route " + routeDst(r).String()
		if gw := routeGw(r); gw.IsValid() {
			s += " via " + gw.String()
		}
		s += fmt.Sprintf(" dev %s proto %d", f.name(r.LinkIndex), r.Protocol)
		if r.Priority != 0 {
			s += fmt.Sprintf(" metric %d", r.Priority)
		}
		lines = append(lines, s)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func (f *fakeNL) dump(method string) error {
	f.reads++
	if f.interrupt > 0 {
		f.interrupt--
		return netlink.ErrDumpInterrupted
	}
	return f.failure(method)
}

func (f *fakeNL) LinkList() ([]netlink.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.dump("LinkList"); err != nil {
		return nil, err
	}
	var out []netlink.Link
	for _, l := range f.links {
		a := l
		a.HardwareAddr = slices.Clone(l.HardwareAddr)
		out = append(out, &netlink.Device{LinkAttrs: a})
	}
	return out, nil
}

func (f *fakeNL) write(method string, link netlink.Link) (*netlink.LinkAttrs, error) {
	f.writes++
	if err := f.failure(method); err != nil {
		return nil, err
	}
	for i := range f.links {
		if f.links[i].Index == link.Attrs().Index {
			return &f.links[i], nil
		}
	}
	return nil, unix.ENODEV
}

func (f *fakeNL) LinkSetMTU(link netlink.Link, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.write("LinkSetMTU", link)
	if err != nil {
		return err
	}
	l.MTU = mtu
	return nil
}

func (f *fakeNL) LinkSetUp(link netlink.Link) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.write("LinkSetUp", link)
	if err != nil {
		return err
	}
	l.Flags |= net.FlagUp
	return nil
}

func (f *fakeNL) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.dump("AddrList"); err != nil {
		return nil, err
	}
	var out []netlink.Addr
	for _, a := range f.addrs {
		if link != nil && link.Attrs().Index != a.LinkIndex {
			continue
		}
		if is4 := addrPrefix(a).Addr().Is4(); (family == netlink.FAMILY_V4 && !is4) || (family == netlink.FAMILY_V6 && is4) {
			continue
		}
		c := a
		c.IPNet = ipconv.IPNet(addrPrefix(a))
		out = append(out, c)
	}
	return out, nil
}

func (f *fakeNL) AddrReplace(link netlink.Link, addr *netlink.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.write("AddrReplace", link)
	if err != nil {
		return err
	}
	p := addrPrefix(*addr)
	if err := f.failAddr[p]; err != nil {
		return err
	}
	for i, a := range f.addrs {
		if a.LinkIndex == l.Index && addrPrefix(a) == p {
			f.addrs[i].Flags = addr.Flags // replace updates the flags
			return nil
		}
	}
	f.addrs = append(f.addrs, netlink.Addr{IPNet: ipconv.IPNet(p), LinkIndex: l.Index, Flags: addr.Flags})
	f.added[p] = time.Now()
	return nil
}

func (f *fakeNL) AddrDel(link netlink.Link, addr *netlink.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.write("AddrDel", link)
	if err != nil {
		return err
	}
	p := addrPrefix(*addr)
	if err := f.failAddr[p]; err != nil {
		return err
	}
	n := len(f.addrs)
	f.addrs = slices.DeleteFunc(f.addrs, func(a netlink.Addr) bool { return a.LinkIndex == l.Index && addrPrefix(a) == p })
	if len(f.addrs) == n {
		return unix.EADDRNOTAVAIL
	}
	return nil
}

func (f *fakeNL) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.dump("RouteListFiltered"); err != nil {
		return nil, err
	}
	var out []netlink.Route
	for _, r := range f.routes {
		c := r
		c.Dst = ipconv.IPNet(routeDst(r))
		c.Gw = slices.Clone(r.Gw)
		out = append(out, c)
	}
	return out, nil
}

// RouteReplace replaces the route with the same (table, dst, metric) key, or
// adds it, as the kernel does for IPv4.
func (f *fakeNL) RouteReplace(route *netlink.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if err := f.failure("RouteReplace"); err != nil {
		return err
	}
	if !slices.ContainsFunc(f.links, func(l netlink.LinkAttrs) bool { return l.Index == route.LinkIndex }) {
		return unix.ENODEV
	}
	r := *route
	r.Dst = ipconv.IPNet(routeDst(*route))
	r.Gw = slices.Clone(route.Gw)
	if r.Table == 0 {
		r.Table = unix.RT_TABLE_MAIN
	}
	for i, old := range f.routes {
		if routeDst(old) == routeDst(r) && old.Priority == r.Priority && old.Table == r.Table {
			f.routes[i] = r
			return nil
		}
	}
	f.routes = append(f.routes, r)
	return nil
}

func (f *fakeNL) RouteDel(route *netlink.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if err := f.failure("RouteDel"); err != nil {
		return err
	}
	for i, r := range f.routes {
		if routeDst(r) != routeDst(*route) || r.Priority != route.Priority ||
			(route.Protocol != 0 && r.Protocol != route.Protocol) ||
			(route.Gw != nil && routeGw(r) != routeGw(*route)) ||
			(route.LinkIndex != 0 && r.LinkIndex != route.LinkIndex) {
			continue
		}
		f.routes = slices.Delete(f.routes, i, i+1)
		return nil
	}
	return unix.ESRCH
}

// RouteGet answers local for an address of a link (an IPv6 one once
// routeDelay passed since it was added), as the kernel's local table does,
// and otherwise is a longest-prefix match over the routes, lowest metric
// first.
func (f *fakeNL) RouteGet(dst net.IP) ([]netlink.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	ip, ok := netip.AddrFromSlice(dst)
	if !ok {
		return nil, unix.EINVAL
	}
	ip = ip.Unmap()
	for _, a := range f.addrs {
		p := addrPrefix(a)
		if p.Addr() != ip {
			continue
		}
		if ip.Is4() || (f.routeDelay >= 0 && !time.Now().Before(f.added[p].Add(f.routeDelay))) {
			return []netlink.Route{{Type: unix.RTN_LOCAL, LinkIndex: a.LinkIndex, Dst: ipconv.IPNet(netip.PrefixFrom(ip, ip.BitLen()))}}, nil
		}
	}
	var best *netlink.Route
	for i, r := range f.routes {
		d := routeDst(r)
		if !d.Contains(ip) {
			continue
		}
		if best == nil || d.Bits() > routeDst(*best).Bits() ||
			(d.Bits() == routeDst(*best).Bits() && r.Priority < best.Priority) {
			best = &f.routes[i]
		}
	}
	if best == nil {
		return nil, unix.ENETUNREACH
	}
	return []netlink.Route{{Type: unix.RTN_UNICAST, LinkIndex: best.LinkIndex, Gw: slices.Clone(best.Gw), Dst: ipconv.IPNet(netip.PrefixFrom(ip, ip.BitLen()))}}, nil
}

func mustLink(t testing.TB, f *fakeNL, name string) netlink.Link {
	t.Helper()
	links, err := f.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Attrs().Name == name {
			return l
		}
	}
	t.Fatalf("no link %s", name)
	return nil
}

func sortLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
