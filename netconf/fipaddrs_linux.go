package netconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"

	"github.com/hc-agent/hc-agent/statedir"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fipHandle is the part of netlink the applier uses.
type fipHandle interface {
	LinkList() ([]netlink.Link, error)
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
	RouteGet(destination net.IP) ([]netlink.Route, error)
}

var _ fipHandle = (*netlink.Handle)(nil)

// publicMACPrefix starts the MAC of a Hetzner Cloud server's public NIC.
const publicMACPrefix = 0x96

// Bounds of the wait for the kernel's local route of a new IPv6 address.
// Recent kernels add it within AddrReplace even on a link without carrier,
// so the first check usually succeeds; the poll covers kernels that add it
// from a work queue after the address (DAD completion, link coming up).
const (
	defaultRouteWait = time.Second
	routePoll        = 10 * time.Millisecond
)

// FloatingIPApplier configures floating IP addresses on the public NIC and
// removes only those it added, next to the private networks: all host
// configuration lives in netconf. Ownership is tracked per owner
// ("manager", "group:NAME") and persisted as JSON at a path the daemon
// gives, so that a restarted agent still knows what it added. It
// implements floatingip.Host.
type FloatingIPApplier struct {
	nl        fipHandle
	statePath string
	log       *slog.Logger

	// routeWait bounds the wait for a new IPv6 address's local route.
	routeWait time.Duration

	mu    sync.Mutex
	owned map[string][]string // owner -> sorted prefixes
	// nic is the name of the public NIC last selected, to log a change once.
	nic string
	// noRoute holds IPv6 addresses hc-agent added whose local route did not
	// appear in time: configured in the kernel but not yet receiving.
	noRoute map[netip.Prefix]bool
}

// NewFloatingIPApplier returns an applier using nl (netlink.NewHandle, or a handle in
// a test namespace) and loads the ownership record from statePath ("" keeps
// it in memory only).
func NewFloatingIPApplier(nl fipHandle, statePath string, log *slog.Logger) (*FloatingIPApplier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &FloatingIPApplier{
		nl: nl, statePath: statePath, log: log, routeWait: defaultRouteWait,
		owned: map[string][]string{}, noRoute: map[netip.Prefix]bool{},
	}
	if statePath != "" {
		b, err := os.ReadFile(statePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("read floating ip state %s: %w", statePath, err)
		default:
			o, err := parseFloatingIPOwned(b)
			if err != nil {
				return nil, fmt.Errorf("parse floating ip state %s: %w", statePath, err)
			}
			a.owned = o
		}
	}
	return a, nil
}

// parseFloatingIPOwned parses the ownership record: a JSON object from owner to the
// prefixes it added. Prefixes are normalised, sorted and deduplicated; an
// owner without prefixes is dropped; an invalid prefix or an empty owner is
// an error, since guessing could later remove an address hc-agent did not
// add.
func parseFloatingIPOwned(b []byte) (map[string][]string, error) {
	var raw map[string][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(raw))
	for owner, ps := range raw {
		if owner == "" {
			return nil, errors.New("empty owner")
		}
		var norm []string
		for _, s := range ps {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("owner %s: %w", owner, err)
			}
			norm = append(norm, p.String())
		}
		slices.Sort(norm)
		norm = slices.Compact(norm)
		if len(norm) > 0 {
			out[owner] = norm
		}
	}
	return out, nil
}

// publicLink finds the public NIC: the link whose MAC starts with 96:, else
// the link of the IPv4 default route.
//
// A 96: first byte does not single out one link: the kernel gives veth,
// bridge, macvlan and tun links a random locally administered MAC, whose
// first byte is 0x96 once in 64 (Docker and Kubernetes hosts have many such
// links). So when several links match, the one carrying the IPv4 default
// route wins, then the one carrying the IPv6 default route (a Hetzner public
// NIC has both, an IPv6-only server the latter), then one whose MAC starts
// with 96:00 like the MACs Hetzner assigns (a random MAC does once in
// 16384), then the lowest interface index, since the NICs of the machine
// register before links created later.
func (a *FloatingIPApplier) publicLink() (netlink.Link, error) {
	links, err := a.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var cands []netlink.Link
	for _, l := range links {
		if mac := l.Attrs().HardwareAddr; len(mac) == 6 && mac[0] == publicMACPrefix {
			cands = append(cands, l)
		}
	}
	var link netlink.Link
	matched := len(cands)
	switch matched {
	case 0:
		v4, err := a.defaultRouteLinks(netlink.FAMILY_V4)
		if err != nil {
			return nil, err
		}
		for _, idx := range v4 {
			for _, l := range links {
				if l.Attrs().Index == idx {
					link = l
					break
				}
			}
			if link != nil {
				break
			}
		}
		if link == nil {
			return nil, errors.New("find public nic: no link with a 96: mac and no default route")
		}
	case 1:
		link = cands[0]
	default:
		// narrow keeps the candidates for which keep holds, unless none do.
		narrow := func(keep func(netlink.Link) bool) {
			if n := slices.DeleteFunc(slices.Clone(cands), func(l netlink.Link) bool { return !keep(l) }); len(n) > 0 {
				cands = n
			}
		}
		for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			idxs, err := a.defaultRouteLinks(family)
			if err != nil {
				return nil, err
			}
			narrow(func(l netlink.Link) bool { return slices.Contains(idxs, l.Attrs().Index) })
		}
		narrow(func(l netlink.Link) bool { return l.Attrs().HardwareAddr[1] == 0 })
		link = slices.MinFunc(cands, func(x, y netlink.Link) int { return x.Attrs().Index - y.Attrs().Index })
	}
	if name := link.Attrs().Name; name != a.nic {
		// A state transition: logged once, not on every Set.
		a.log.Info("public nic selected", "dev", name, "mac", link.Attrs().HardwareAddr.String(), "mac_matches", matched)
		a.nic = name
	}
	return link, nil
}

// defaultRouteLinks returns the indexes of the links that carry a default
// route of family in the main table, in the kernel's order.
func (a *FloatingIPApplier) defaultRouteLinks(family int) ([]int, error) {
	routes, err := a.nl.RouteList(nil, family)
	if err != nil {
		return nil, fmt.Errorf("list routes of family %d: %w", family, err)
	}
	var out []int
	for _, r := range routes {
		if r.Dst != nil && (!r.Dst.IP.IsUnspecified() || !isZeroMask(r.Dst.Mask)) {
			continue
		}
		if r.LinkIndex > 0 {
			out = append(out, r.LinkIndex)
		}
		for _, nh := range r.MultiPath {
			if nh != nil && nh.LinkIndex > 0 {
				out = append(out, nh.LinkIndex)
			}
		}
	}
	return out, nil
}

// isZeroMask reports whether m is a /0 mask.
func isZeroMask(m net.IPMask) bool {
	ones, bits := m.Size()
	return ones == 0 && bits > 0
}

// Set makes exactly prefixes configured for owner: it adds the missing ones
// (IPv6 without duplicate address detection), removes those owner added
// before and no longer wants (unless another owner still wants them), and
// never removes an address it did not add. After adding an IPv6 address it
// waits, up to a second, for the kernel's local route to it, so that
// traffic to the address is received when Set returns. It makes no netlink
// writes and no state file write when nothing changes; it keeps going past
// one failure and returns all errors joined.
func (a *FloatingIPApplier) Set(ctx context.Context, owner string, prefixes []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	link, err := a.publicLink()
	if err != nil {
		return err
	}
	dev := link.Attrs().Name
	present := map[netip.Prefix]bool{}
	addrs, err := a.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", dev, err)
	}
	for _, ad := range addrs {
		if p, ok := ipconv.Prefix(ad.IPNet); ok {
			present[p] = true
		}
	}
	want := map[string]bool{}
	for _, p := range prefixes {
		want[p.String()] = true
	}
	var errs []error
	var waitFor []netip.Prefix
	owned := slices.Clone(a.owned[owner])
	// Add before delete.
	for _, p := range prefixes {
		s := p.String()
		if present[p] {
			if !slices.Contains(owned, s) && a.ownedByAnyone(s) {
				owned = append(owned, s)
			}
			if a.noRoute[p] && slices.Contains(owned, s) {
				// Added earlier without its local route showing up: look
				// again (a read, not a write).
				waitFor = append(waitFor, p)
			}
			continue
		}
		addr := &netlink.Addr{IPNet: ipconv.IPNet(p)}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := a.nl.AddrReplace(link, addr); err != nil {
			errs = append(errs, fmt.Errorf("replace address %v dev %s: %w", p, dev, err))
			continue
		}
		present[p] = true
		a.log.Info("floating ip configured", "owner", owner, "addr", s, "dev", dev)
		if !slices.Contains(owned, s) {
			owned = append(owned, s)
		}
		if p.Addr().Is6() {
			waitFor = append(waitFor, p)
		}
	}
	errs = append(errs, a.waitLocalRoutes(ctx, dev, waitFor)...)
	var keep []string
	for _, s := range owned {
		if want[s] {
			keep = append(keep, s)
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			continue
		}
		if a.wantedByOther(owner, s) {
			continue
		}
		if !present[p] {
			delete(a.noRoute, p)
			continue
		}
		if err := a.nl.AddrDel(link, &netlink.Addr{IPNet: ipconv.IPNet(p)}); err != nil &&
			!errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete address %v dev %s: %w", p, dev, err))
			keep = append(keep, s)
			continue
		}
		delete(a.noRoute, p)
		a.log.Info("floating ip removed", "owner", owner, "addr", s, "dev", dev)
	}
	slices.Sort(keep)
	if !slices.Equal(keep, a.owned[owner]) {
		if len(keep) == 0 {
			delete(a.owned, owner)
		} else {
			a.owned[owner] = keep
		}
		if err := a.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// errNoLocalRoute says that the kernel has no local route for an address
// hc-agent added.
var errNoLocalRoute = errors.New("no local route")

// waitLocalRoutes waits, up to routeWait, until the kernel has a local
// route for every address in ps: only then is traffic to it received. It
// returns one error per address whose route did not appear and records
// those in noRoute, so that Configured does not claim them and the next Set
// looks again.
func (a *FloatingIPApplier) waitLocalRoutes(ctx context.Context, dev string, ps []netip.Prefix) []error {
	if len(ps) == 0 {
		return nil
	}
	pending := slices.Clone(ps)
	lastErr := map[netip.Prefix]error{}
	deadline := time.NewTimer(a.routeWait)
	defer deadline.Stop()
	var poll *time.Ticker
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		pending = slices.DeleteFunc(pending, func(p netip.Prefix) bool {
			ok, err := a.hasLocalRoute(p)
			lastErr[p] = err
			if ok {
				delete(a.noRoute, p)
			}
			return ok
		})
		if len(pending) == 0 {
			return nil
		}
		if poll == nil {
			poll = time.NewTicker(routePoll)
		}
		var cause error
		select {
		case <-poll.C:
			continue
		case <-deadline.C:
			cause = fmt.Errorf("%w after %v", errNoLocalRoute, a.routeWait)
		case <-ctx.Done():
			cause = fmt.Errorf("%w: %w", errNoLocalRoute, ctx.Err())
		}
		errs := make([]error, 0, len(pending))
		for _, p := range pending {
			a.noRoute[p] = true
			err := cause
			if lastErr[p] != nil {
				err = fmt.Errorf("%w (last lookup: %w)", cause, lastErr[p])
			}
			errs = append(errs, fmt.Errorf("wait for local route of %v dev %s: %w", p, dev, err))
		}
		return errs
	}
}

// hasLocalRoute asks the kernel how it routes p's address and reports
// whether it delivers it locally.
func (a *FloatingIPApplier) hasLocalRoute(p netip.Prefix) (bool, error) {
	rs, err := a.nl.RouteGet(net.IP(p.Addr().AsSlice()))
	if err != nil {
		return false, fmt.Errorf("get route to %v: %w", p.Addr(), err)
	}
	for _, r := range rs {
		if r.Type == unix.RTN_LOCAL {
			return true, nil
		}
	}
	return false, nil
}

// ownedByAnyone reports whether some owner added s, so another owner may
// share it; an address nobody added stays foreign.
func (a *FloatingIPApplier) ownedByAnyone(s string) bool {
	for _, ps := range a.owned {
		if slices.Contains(ps, s) {
			return true
		}
	}
	return false
}

func (a *FloatingIPApplier) wantedByOther(owner, s string) bool {
	for o, ps := range a.owned {
		if o != owner && slices.Contains(ps, s) {
			return true
		}
	}
	return false
}

// Owned returns the prefixes owner added, sorted.
func (a *FloatingIPApplier) Owned(owner string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.owned[owner])
}

// Addresses returns the addresses hc-agent configured, for any owner,
// sorted and without duplicates. An IPv6 address whose local route has not
// appeared is included: it is configured, and removed like any other.
func (a *FloatingIPApplier) Addresses() []netip.Prefix {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []netip.Prefix
	for _, ps := range a.owned {
		for _, s := range ps {
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	return slices.Compact(out)
}

// Configured reports whether hc-agent configured ip on the public NIC (for
// any owner) and the kernel receives traffic to it: an IPv6 address whose
// local route did not appear in time is not.
func (a *FloatingIPApplier) Configured(ip netip.Addr) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ps := range a.owned {
		for _, s := range ps {
			p, err := netip.ParsePrefix(s)
			if err == nil && p.Addr() == ip {
				return !a.noRoute[p]
			}
		}
	}
	return false
}

func (a *FloatingIPApplier) save() error {
	if a.statePath == "" {
		return nil
	}
	b, err := json.Marshal(a.owned)
	if err != nil {
		return fmt.Errorf("encode floating ip state: %w", err)
	}
	if err := statedir.WriteFile(a.statePath, b); err != nil {
		return fmt.Errorf("write floating ip state: %w", err)
	}
	return nil
}
