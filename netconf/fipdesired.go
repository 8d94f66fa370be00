package netconf

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// FloatingIPWants maps an owner of floating IP addresses ("manager",
// "group:NAME") to the prefixes it wants on the public NIC.
type FloatingIPWants map[string][]netip.Prefix

// Clone returns a deep copy of w.
func (w FloatingIPWants) Clone() FloatingIPWants {
	out := make(FloatingIPWants, len(w))
	for o, ps := range w {
		out[o] = slices.Clone(ps)
	}
	return out
}

// wants reports whether owner wants p.
func (w FloatingIPWants) wants(owner string, p netip.Prefix) bool {
	return slices.Contains(w[owner], p)
}

// FloatingIPAddr is one address the public NIC must carry, with the owners
// that want it.
type FloatingIPAddr struct {
	Prefix netip.Prefix
	Owners []string // sorted, never empty
}

// NoDAD reports whether the address is added without duplicate address
// detection. IPv6 ones are: a floating IP moves between servers, and DAD
// would keep it tentative, dropping its traffic, for a second or more after
// every failover.
func (a FloatingIPAddr) NoDAD() bool { return a.Prefix.Addr().Is6() }

// String renders the address and its owners, e.g.
// "203.0.113.1/32 (group:web, manager)".
func (a FloatingIPAddr) String() string {
	return a.Prefix.String() + " (" + strings.Join(a.Owners, ", ") + ")"
}

// DesiredFloatingIPs returns the floating IP addresses the public NIC must
// carry: every valid prefix some owner wants, once, in address order, with
// the owners that want it. An owner without a name wants nothing, since the
// ownership record could not name it.
func DesiredFloatingIPs(w FloatingIPWants) []FloatingIPAddr {
	owners := map[netip.Prefix][]string{}
	for _, o := range slices.Sorted(maps.Keys(w)) {
		if o == "" {
			continue
		}
		for _, p := range w[o] {
			if !p.IsValid() || slices.Contains(owners[p], o) {
				continue
			}
			owners[p] = append(owners[p], o)
		}
	}
	out := make([]FloatingIPAddr, 0, len(owners))
	for p, os := range owners {
		out = append(out, FloatingIPAddr{Prefix: p, Owners: os})
	}
	slices.SortFunc(out, func(a, b FloatingIPAddr) int { return a.Prefix.Compare(b.Prefix) })
	return out
}
