package netconf

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fakeNL is a stateful in-memory netlink that behaves like the kernel for the
// calls netconf makes, counts reads and writes, and renders its state as
// sorted text.
type fakeNL struct {
	mu     sync.Mutex
	links  []netlink.LinkAttrs
	addrs  []netlink.Addr
	routes []netlink.Route
	reads  int
	writes int
	// fail makes the named method return the error (once per entry if
	// failOnce is set).
	fail     map[string]error
	failOnce bool
	// interrupt makes the next n dumps return netlink.ErrDumpInterrupted.
	interrupt int
}

var _ nlHandle = (*fakeNL)(nil)

func newFakeNL() *fakeNL { return &fakeNL{fail: map[string]error{}} }

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

// addAddr puts an address on a link as someone else (DHCP, image) would.
func (f *fakeNL) addAddr(dev, prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := netip.MustParsePrefix(prefix)
	f.addrs = append(f.addrs, netlink.Addr{IPNet: ipnet(p), LinkIndex: f.index(dev)})
}

// addRoute adds a route as someone else would. gw may be "".
func (f *fakeNL) addRoute(dst, gw, dev string, proto, metric int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := netlink.Route{
		LinkIndex: f.index(dev),
		Dst:       ipnet(netip.MustParsePrefix(dst)),
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

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (f *fakeNL) counts() (reads, writes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.writes
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
		lines = append(lines, fmt.Sprintf("addr %s dev %s", addrPrefix(a), f.name(a.LinkIndex)))
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
		c := a
		c.IPNet = ipnet(addrPrefix(a))
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
	for _, a := range f.addrs {
		if a.LinkIndex == l.Index && addrPrefix(a) == p {
			return nil
		}
	}
	f.addrs = append(f.addrs, netlink.Addr{IPNet: ipnet(p), LinkIndex: l.Index})
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
		c.Dst = ipnet(routeDst(r))
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
	r.Dst = ipnet(routeDst(*route))
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

// RouteGet is a longest-prefix match over the routes, lowest metric first.
func (f *fakeNL) RouteGet(dst net.IP) ([]netlink.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	ip, _ := netip.AddrFromSlice(dst)
	ip = ip.Unmap()
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
	return []netlink.Route{{LinkIndex: best.LinkIndex, Gw: slices.Clone(best.Gw), Dst: ipnet(netip.PrefixFrom(ip, 32))}}, nil
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
