package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fipNL is a stateful fake of the netlink calls the FloatingIPApplier makes: links,
// their addresses and the kernel's local routes for them. It renders its
// addresses as sorted text and counts writes. Its clock is time.Now, so a
// test in a synctest bubble controls when a local route appears.
type fipNL struct {
	mu    sync.Mutex
	links []netlink.Link
	addrs map[int][]fakeAddr // by link index
	// defaultLink is the link index of the IPv4 default route; 0 is none.
	defaultLink int
	// routeDelay is how long after an IPv6 address is added its local
	// route appears; negative means never.
	routeDelay time.Duration
	// failReplace makes AddrReplace fail for a prefix.
	failReplace map[netip.Prefix]error
	// failDel makes AddrDel fail for a prefix.
	failDel map[netip.Prefix]error

	writes    int
	routeGets int
}

type fakeAddr struct {
	p     netip.Prefix
	flags int
	added time.Time
}

var _ fipHandle = (*fipNL)(nil)

// newFIPNL returns a host with eth0, the public NIC (96: MAC), and eth1, a
// private network NIC (86: MAC).
func newFIPNL() *fipNL {
	mac0, _ := net.ParseMAC("96:00:00:00:00:01")
	mac1, _ := net.ParseMAC("86:00:00:00:00:02")
	return &fipNL{
		links: []netlink.Link{
			&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 2, Name: "eth0", HardwareAddr: mac0}},
			&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "eth1", HardwareAddr: mac1}},
		},
		addrs: map[int][]fakeAddr{},
	}
}

// add puts an address on a link as if someone else configured it; an IPv6
// one comes with the flags in s ("2001:db8::1/64 nodad").
func (f *fipNL) add(index int, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fields := strings.Fields(s)
	a := fakeAddr{p: netip.MustParsePrefix(fields[0]), added: time.Now()}
	if slices.Contains(fields[1:], "nodad") {
		a.flags |= unix.IFA_F_NODAD
	}
	f.addrs[index] = append(f.addrs[index], a)
}

// del removes an address as if someone else deleted it.
func (f *fipNL) del(index int, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := netip.MustParsePrefix(s)
	f.addrs[index] = slices.DeleteFunc(f.addrs[index], func(a fakeAddr) bool { return a.p == p })
}

// state renders every address as "dev prefix[ nodad]", sorted.
func (f *fipNL) state() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.links {
		for _, a := range f.addrs[l.Attrs().Index] {
			s := l.Attrs().Name + " " + a.p.String()
			if a.flags&unix.IFA_F_NODAD != 0 {
				s += " nodad"
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func (f *fipNL) writeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

func (f *fipNL) LinkList() ([]netlink.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.links), nil
}

func (f *fipNL) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if family != netlink.FAMILY_ALL {
		return nil, fmt.Errorf("fake netlink: family %d not supported", family)
	}
	var out []netlink.Addr
	for _, a := range f.addrs[link.Attrs().Index] {
		out = append(out, netlink.Addr{IPNet: ipconv.IPNet(a.p), Flags: a.flags})
	}
	return out, nil
}

func (f *fipNL) AddrReplace(link netlink.Link, addr *netlink.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	p, ok := ipconv.Prefix(addr.IPNet)
	if !ok {
		return unix.EINVAL
	}
	if err := f.failReplace[p]; err != nil {
		return err
	}
	i := link.Attrs().Index
	a := fakeAddr{p: p, flags: addr.Flags, added: time.Now()}
	if j := slices.IndexFunc(f.addrs[i], func(x fakeAddr) bool { return x.p == p }); j >= 0 {
		f.addrs[i][j] = a
		return nil
	}
	f.addrs[i] = append(f.addrs[i], a)
	return nil
}

func (f *fipNL) AddrDel(link netlink.Link, addr *netlink.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	p, ok := ipconv.Prefix(addr.IPNet)
	if !ok {
		return unix.EINVAL
	}
	if err := f.failDel[p]; err != nil {
		return err
	}
	i := link.Attrs().Index
	n := len(f.addrs[i])
	f.addrs[i] = slices.DeleteFunc(f.addrs[i], func(a fakeAddr) bool { return a.p == p })
	if len(f.addrs[i]) == n {
		return unix.EADDRNOTAVAIL
	}
	return nil
}

func (f *fipNL) RouteList(link netlink.Link, family int) ([]netlink.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if link != nil || family != netlink.FAMILY_V4 {
		return nil, errors.New("fake netlink: only the IPv4 main table of all links")
	}
	if f.defaultLink == 0 {
		return nil, nil
	}
	return []netlink.Route{{LinkIndex: f.defaultLink, Gw: net.IPv4(172, 31, 1, 1)}}, nil
}

// RouteGet answers like the kernel for the addresses it knows: local for an
// address of a link (an IPv6 one once routeDelay passed since it was
// added), else a unicast route.
func (f *fipNL) RouteGet(dst net.IP) ([]netlink.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routeGets++
	ip, ok := netip.AddrFromSlice(dst)
	if !ok {
		return nil, unix.EINVAL
	}
	ip = ip.Unmap()
	for _, as := range f.addrs {
		for _, a := range as {
			if a.p.Addr() != ip {
				continue
			}
			if ip.Is4() || (f.routeDelay >= 0 && !time.Now().Before(a.added.Add(f.routeDelay))) {
				return []netlink.Route{{Type: unix.RTN_LOCAL, Dst: ipconv.IPNet(netip.PrefixFrom(ip, ip.BitLen()))}}, nil
			}
		}
	}
	return []netlink.Route{{Type: unix.RTN_UNICAST, LinkIndex: 2}}, nil
}
