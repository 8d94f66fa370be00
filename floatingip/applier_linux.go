package floatingip

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nlHandle is the part of netlink the applier uses.
type nlHandle interface {
	LinkList() ([]netlink.Link, error)
	AddrList(link netlink.Link, family int) ([]netlink.Addr, error)
	AddrReplace(link netlink.Link, addr *netlink.Addr) error
	AddrDel(link netlink.Link, addr *netlink.Addr) error
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
}

var _ nlHandle = (*netlink.Handle)(nil)

// publicMACPrefix starts the MAC of a Hetzner Cloud server's public NIC.
const publicMACPrefix = 0x96

// Applier configures floating IP addresses on the public NIC and removes
// only those it added. Ownership is tracked per owner ("manager",
// "group:NAME") and persisted as JSON at a path the daemon gives, so that a
// restarted agent still knows what it added. It implements Host.
type Applier struct {
	nl        nlHandle
	statePath string
	log       *slog.Logger

	mu    sync.Mutex
	owned map[string][]string // owner -> sorted prefixes
}

var _ Host = (*Applier)(nil)

// NewApplier returns an applier using nl (netlink.NewHandle, or a handle in
// a test namespace) and loads the ownership record from statePath ("" keeps
// it in memory only).
func NewApplier(nl nlHandle, statePath string, log *slog.Logger) (*Applier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Applier{nl: nl, statePath: statePath, log: log, owned: map[string][]string{}}
	if statePath != "" {
		b, err := os.ReadFile(statePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("read floating ip state %s: %w", statePath, err)
		default:
			if err := json.Unmarshal(b, &a.owned); err != nil {
				return nil, fmt.Errorf("parse floating ip state %s: %w", statePath, err)
			}
		}
	}
	return a, nil
}

// publicLink finds the public NIC: the link whose MAC starts with 96:, else
// the link of the IPv4 default route.
func (a *Applier) publicLink() (netlink.Link, error) {
	links, err := a.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if mac := l.Attrs().HardwareAddr; len(mac) == 6 && mac[0] == publicMACPrefix {
			return l, nil
		}
	}
	routes, err := a.nl.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || (r.Dst.IP.IsUnspecified() && bytes.Equal(r.Dst.Mask, net.CIDRMask(0, 32))) {
			for _, l := range links {
				if l.Attrs().Index == r.LinkIndex {
					return l, nil
				}
			}
		}
	}
	return nil, errors.New("find public nic: no link with a 96: mac and no default route")
}

// Set makes exactly prefixes configured for owner: it adds the missing ones
// (IPv6 without duplicate address detection), removes those owner added
// before and no longer wants (unless another owner still wants them), and
// never removes an address it did not add. It makes no netlink writes and
// no state file write when nothing changes; it keeps going past one failure
// and returns all errors joined.
func (a *Applier) Set(ctx context.Context, owner string, prefixes []netip.Prefix) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	link, err := a.publicLink()
	if err != nil {
		return err
	}
	present := map[netip.Prefix]bool{}
	addrs, err := a.nl.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, ad := range addrs {
		if p, ok := prefixOf(ad.IPNet); ok {
			present[p] = true
		}
	}
	want := map[string]bool{}
	for _, p := range prefixes {
		want[p.String()] = true
	}
	var errs []error
	owned := slices.Clone(a.owned[owner])
	// Add before delete.
	for _, p := range prefixes {
		s := p.String()
		if present[p] {
			if !slices.Contains(owned, s) && a.ownedByAnyone(s) {
				owned = append(owned, s)
			}
			continue
		}
		addr := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := a.nl.AddrReplace(link, addr); err != nil {
			errs = append(errs, fmt.Errorf("replace address %v dev %s: %w", p, link.Attrs().Name, err))
			continue
		}
		a.log.Info("floating ip configured", "owner", owner, "addr", s, "dev", link.Attrs().Name)
		if !slices.Contains(owned, s) {
			owned = append(owned, s)
		}
	}
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
		if a.wantedByOther(owner, s) || !present[p] {
			continue
		}
		if err := a.nl.AddrDel(link, &netlink.Addr{IPNet: ipNet(p)}); err != nil &&
			!errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete address %v dev %s: %w", p, link.Attrs().Name, err))
			keep = append(keep, s)
			continue
		}
		a.log.Info("floating ip removed", "owner", owner, "addr", s, "dev", link.Attrs().Name)
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

// ownedByAnyone reports whether some owner added s, so another owner may
// share it; an address nobody added stays foreign.
func (a *Applier) ownedByAnyone(s string) bool {
	for _, ps := range a.owned {
		if slices.Contains(ps, s) {
			return true
		}
	}
	return false
}

func (a *Applier) wantedByOther(owner, s string) bool {
	for o, ps := range a.owned {
		if o != owner && slices.Contains(ps, s) {
			return true
		}
	}
	return false
}

// Owned returns the prefixes owner added, sorted.
func (a *Applier) Owned(owner string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.owned[owner])
}

func (a *Applier) save() error {
	if a.statePath == "" {
		return nil
	}
	b, err := json.Marshal(a.owned)
	if err != nil {
		return fmt.Errorf("encode floating ip state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(a.statePath), 0o755); err != nil {
		return fmt.Errorf("write floating ip state %s: %w", a.statePath, err)
	}
	tmp := a.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write floating ip state %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, a.statePath); err != nil {
		return fmt.Errorf("write floating ip state %s: %w", a.statePath, err)
	}
	return nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}
