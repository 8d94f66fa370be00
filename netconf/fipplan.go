package netconf

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// fipStep is one planned write: an address to add for owners, or one to
// remove that owners added and no longer want.
type fipStep struct {
	change Change
	prefix netip.Prefix
	add    bool
	// owners are recorded (add) or dropped (remove) when the write succeeds.
	owners []string
}

// fipPlan is what makeFIPPlan computes.
type fipPlan struct {
	// steps are the writes: adds, then removes.
	steps []fipStep
	// record is the ownership record after the changes that need no
	// write: an owner that wants an address another owner added shares it;
	// an owner that no longer wants an address another owner still wants,
	// or one that is gone already, drops it. The steps update it further.
	record map[string][]string
	// recheck lists owned IPv6 addresses whose local route had not appeared:
	// Apply looks again (a read, not a write).
	recheck []netip.Prefix
}

// makeFIPPlan compares the addresses present on the public NIC dev with
// the desired ones. It adds what is missing, removes only what an owner
// added and nobody wants any more, and never claims or removes an address
// that nobody added (someone else configured it).
func makeFIPPlan(dev string, present map[netip.Prefix]bool, wants FloatingIPWants, owned map[string][]string, noRoute map[netip.Prefix]bool) fipPlan {
	p := fipPlan{record: make(map[string][]string, len(owned))}
	ownersOf := map[netip.Prefix][]string{}
	for o, ss := range owned {
		p.record[o] = slices.Clone(ss)
		for _, s := range ss {
			if pfx, err := netip.ParsePrefix(s); err == nil {
				ownersOf[pfx] = append(ownersOf[pfx], o)
			}
		}
	}
	desired := DesiredFloatingIPs(wants)
	wanted := make(map[netip.Prefix]bool, len(desired))
	var removes []fipStep
	for _, d := range desired {
		wanted[d.Prefix] = true
		s := d.Prefix.String()
		if present[d.Prefix] {
			if len(ownersOf[d.Prefix]) == 0 {
				continue // someone else's: neither claimed nor removed
			}
			for _, o := range d.Owners {
				if !slices.Contains(p.record[o], s) {
					p.record[o] = append(p.record[o], s)
				}
			}
			if noRoute[d.Prefix] {
				p.recheck = append(p.recheck, d.Prefix)
			}
			continue
		}
		why := "floating ip of " + strings.Join(d.Owners, ", ")
		if len(ownersOf[d.Prefix]) > 0 {
			why += ", deleted by someone else"
		}
		p.steps = append(p.steps, fipStep{
			change: Change{Op: OpAdd, Kind: "address", Object: s, Dev: dev, Reason: why},
			prefix: d.Prefix, add: true, owners: d.Owners,
		})
	}
	stale := slices.SortedFunc(maps.Keys(ownersOf), netip.Prefix.Compare)
	for _, pfx := range stale {
		var drop []string
		for _, o := range ownersOf[pfx] {
			if !wants.wants(o, pfx) {
				drop = append(drop, o)
			}
		}
		if len(drop) == 0 {
			continue
		}
		slices.Sort(drop)
		if wanted[pfx] || !present[pfx] {
			// Another owner still wants it, or it is gone already: only
			// the record changes.
			for _, o := range drop {
				p.record[o] = slices.DeleteFunc(p.record[o], func(s string) bool { return s == pfx.String() })
			}
			continue
		}
		removes = append(removes, fipStep{
			change: Change{Op: OpRemove, Kind: "address", Object: pfx.String(), Dev: dev,
				Reason: "floating ip of " + strings.Join(drop, ", ") + " no longer wanted"},
			prefix: pfx, owners: drop,
		})
	}
	normalizeRecord(p.record)
	p.steps = append(p.steps, removes...)
	return p
}

// normalizeRecord sorts each owner's prefixes and drops owners without any.
func normalizeRecord(r map[string][]string) {
	for o, ss := range r {
		if len(ss) == 0 {
			delete(r, o)
			continue
		}
		slices.Sort(ss)
		r[o] = slices.Compact(ss)
	}
}

// recordHas reports whether some owner in r added s.
func recordHas(r map[string][]string, s string) bool {
	for _, ss := range r {
		if slices.Contains(ss, s) {
			return true
		}
	}
	return false
}
