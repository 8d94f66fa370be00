package netconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"

	"github.com/hc-agent/hc-agent/statedir"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fipHandle is the part of netlink the floating IP applier uses, a subset
// of nlHandle.
type fipHandle interface {
	LinkList() ([]netlink.Link, error)
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteListFiltered(family int, filter *netlink.Route, filterMask uint64) ([]netlink.Route, error)
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
// removes only those it added, next to the private networks and with their
// contract: DesiredFloatingIPs, Plan, Apply. Ownership is tracked per owner
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
	owned map[string][]string // owner -> sorted prefixes it added
	// wants is what each owner asked for last; see Wants.
	wants FloatingIPWants
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
	a.wants = FloatingIPWants{}
	for o, ss := range a.owned {
		for _, s := range ss {
			a.wants[o] = append(a.wants[o], netip.MustParsePrefix(s)) // parsed above
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

// Wants returns what each owner wants now: what it last asked for, or,
// before its first Set, what the ownership record says it added (a
// restarted agent keeps every owner's addresses until the owner says
// otherwise).
func (a *FloatingIPApplier) Wants() FloatingIPWants {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.wants.Clone()
}

// fipSnapshot is the kernel state a floating IP plan works from: the
// public NIC and the addresses on it.
type fipSnapshot struct {
	link    netlink.Link
	present map[netip.Prefix]bool
}

func (a *FloatingIPApplier) readSnapshot() (fipSnapshot, error) {
	link, err := a.publicLink()
	if err != nil {
		return fipSnapshot{}, err
	}
	dev := link.Attrs().Name
	addrs, err := retryDump("addresses of "+dev, func() ([]netlink.Addr, error) { return a.nl.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return fipSnapshot{}, err
	}
	present := make(map[netip.Prefix]bool, len(addrs))
	for _, ad := range addrs {
		if p, ok := ipconv.Prefix(ad.IPNet); ok {
			present[p] = true
		}
	}
	return fipSnapshot{link: link, present: present}, nil
}

// Plan returns the changes Apply(ctx, wants) would make, without writing
// anything.
func (a *FloatingIPApplier) Plan(ctx context.Context, wants FloatingIPWants) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("plan floating ip addresses: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	snap, err := a.readSnapshot()
	if err != nil {
		return nil, fmt.Errorf("plan floating ip addresses: %w", err)
	}
	p := makeFIPPlan(snap.link.Attrs().Name, snap.present, wants, a.owned, a.noRoute)
	changes := make([]Change, 0, len(p.steps))
	for _, s := range p.steps {
		changes = append(changes, s.change)
	}
	return changes, nil
}

// Apply makes wants the configured floating IP addresses and returns the
// writes it made (or attempted, see the error). It reads the actual state,
// adds before it removes, adds IPv6 addresses without duplicate address
// detection and then waits, up to a second, for the kernel's local route
// to them, so that traffic to them is received when Apply returns. It
// removes only addresses an owner added and nobody wants any more, treats
// "already gone" as done, keeps going past a failed write and returns all
// errors joined. The ownership record changes only for writes that
// succeeded and is saved only when it changed: with nothing to change
// Apply makes no netlink write and no file write.
func (a *FloatingIPApplier) Apply(ctx context.Context, wants FloatingIPWants) ([]Change, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.apply(ctx, wants)
}

// Set makes exactly prefixes configured for owner, the other owners'
// wants unchanged: it is Apply with owner's entry replaced, so it also puts
// back an address another owner wants that someone deleted. floatingip's
// Manager and groups call it (floatingip.Host).
func (a *FloatingIPApplier) Set(ctx context.Context, owner string, prefixes []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.wants.Clone()
	w[owner] = slices.Clone(prefixes)
	_, err := a.apply(ctx, w)
	return err
}

func (a *FloatingIPApplier) apply(ctx context.Context, wants FloatingIPWants) ([]Change, error) {
	return a.applySkipping(ctx, wants, nil)
}

// applySkipping is apply, leaving out every write that skip (when set)
// refuses: an address whose add is skipped stays missing and owned, so that
// a later apply adds it; one whose removal is skipped stays owned.
func (a *FloatingIPApplier) applySkipping(ctx context.Context, wants FloatingIPWants, skip func(Change) bool) ([]Change, error) {
	snap, err := a.readSnapshot()
	if err != nil {
		return nil, fmt.Errorf("apply floating ip addresses: %w", err)
	}
	link := snap.link
	dev := link.Attrs().Name
	p := makeFIPPlan(dev, snap.present, wants, a.owned, a.noRoute)
	a.wants = wants.Clone()
	for o, ps := range a.wants {
		if len(ps) == 0 {
			delete(a.wants, o)
		}
	}
	record := p.record
	var (
		errs    []error
		changes []Change
		waitFor = p.recheck
	)
	// Add before delete.
	for _, s := range p.steps {
		if !s.add || (skip != nil && skip(s.change)) {
			continue
		}
		changes = append(changes, s.change)
		addr := &netlink.Addr{IPNet: ipconv.IPNet(s.prefix)}
		if s.prefix.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		} else {
			// A DHCP client's label flush of the public NIC leaves it.
			addr.Label = addrLabel(dev)
		}
		if err := a.nl.AddrReplace(link, addr); err != nil {
			errs = append(errs, fmt.Errorf("replace address %v dev %s: %w", s.prefix, dev, err))
			continue
		}
		a.log.Info("floating ip configured", "owner", strings.Join(s.owners, ","), "addr", s.prefix.String(), "dev", dev)
		for _, o := range s.owners {
			record[o] = append(record[o], s.prefix.String())
		}
		if s.prefix.Addr().Is6() {
			waitFor = append(waitFor, s.prefix)
		}
	}
	errs = append(errs, a.waitLocalRoutes(ctx, dev, waitFor)...)
	for _, s := range p.steps {
		if s.add || (skip != nil && skip(s.change)) {
			continue
		}
		changes = append(changes, s.change)
		if err := a.nl.AddrDel(link, &netlink.Addr{IPNet: ipconv.IPNet(s.prefix)}); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("delete address %v dev %s: %w", s.prefix, dev, err))
			continue
		}
		a.log.Info("floating ip removed", "owner", strings.Join(s.owners, ","), "addr", s.prefix.String(), "dev", dev)
		for _, o := range s.owners {
			record[o] = slices.DeleteFunc(record[o], func(x string) bool { return x == s.prefix.String() })
		}
	}
	normalizeRecord(record)
	// An address nobody owns any more is not waited for either.
	for pfx := range a.noRoute {
		if !recordHas(record, pfx.String()) {
			delete(a.noRoute, pfx)
		}
	}
	if !maps.EqualFunc(record, a.owned, slices.Equal) {
		a.owned = record
		if err := a.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return changes, errors.Join(errs...)
}

// Restore puts back the floating IP addresses an owner wants that someone
// else deleted (a DHCP client's flush, `ip addr flush`), leaving out those
// skip refuses, and returns the adds it made. It removes nothing: what the
// owners no longer want is the owners' business (Set). With nothing missing
// it is one address dump and no write.
func (a *FloatingIPApplier) Restore(ctx context.Context, skip func(Change) bool) ([]Change, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.wants) == 0 {
		return nil, nil
	}
	return a.applySkipping(ctx, a.wants.Clone(), func(c Change) bool {
		return c.Op != OpAdd || (skip != nil && skip(c))
	})
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
