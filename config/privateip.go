package config

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hc-agent/hc-agent/metadata"
)

// privateIPKinds names the valid values of via in messages.
const privateIPKinds = `"alias" or "route"`

// valid reports whether v is one of the private VIP kinds.
func (v Via) valid() bool { return v == ViaAlias || v == ViaRoute }

// privateIPProblem says what is wrong with a private VIP address as written,
// or "". Private networks are IPv4 only and their ranges are RFC 1918, which
// the API also demands of a route's destination.
func privateIPProblem(s string) string {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "":
		return fmt.Sprintf("must be an IPv4 address, got %q", s)
	case !a.Is4():
		return fmt.Sprintf("must be an IPv4 address (private networks have no IPv6), got %q", s)
	case !a.IsPrivate():
		return fmt.Sprintf("must be a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), got %q", s)
	}
	return ""
}

func viaProblem(v Via) string {
	if v.valid() {
		return ""
	}
	return fmt.Sprintf("must be %s, got %q", privateIPKinds, string(v))
}

var privateIPKeyRE = regexp.MustCompile(`^groups\[\d+\]\.private_ips\[\d+\]\.(ip|via)$`)

// checkPrivateIPs rejects, while the line numbers are at hand, private VIP
// addresses and kinds that can never be valid. Validate checks the same (and
// what needs the whole configuration, such as duplicates) for values that do
// not come from a file.
func checkPrivateIPs(root *yaml.Node) error {
	var errs []*ParseError
	for line, keys := range indexKeys(root) {
		for _, k := range keys {
			m := privateIPKeyRE.FindStringSubmatch(k.path)
			if m == nil || k.line != line || k.kind != yaml.ScalarNode || k.value == "" {
				continue
			}
			var msg string
			if m[1] == "ip" {
				msg = privateIPProblem(k.value)
			} else {
				msg = viaProblem(Via(k.value))
			}
			if msg != "" {
				errs = append(errs, &ParseError{Line: line, Key: k.path, Msg: msg})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b *ParseError) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return strings.Compare(a.Key, b.Key)
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

// validatePrivateIPs checks one group's private_ips and egress. seen maps
// each private VIP already listed (by an earlier group or entry) to its key,
// so that a VIP is held by one group only.
func (g Group) validatePrivateIPs(p *problems, key string, seen map[netip.Addr]string) {
	for j, pip := range g.PrivateIPs {
		k := fmt.Sprintf("%s.private_ips[%d]", key, j)
		switch {
		case pip.IP == "":
			p.add(k+".ip", "required")
		case privateIPProblem(pip.IP) != "":
			p.add(k+".ip", "%s", privateIPProblem(pip.IP))
		default:
			a := pip.Addr()
			if prev, dup := seen[a]; dup {
				p.add(k+".ip", "%s is already used by %s", a, prev)
			} else {
				seen[a] = k
			}
		}
		switch {
		case pip.Via == "":
			p.add(k+".via", "required (%s)", privateIPKinds)
		case !pip.Via.valid():
			p.add(k+".via", "%s", viaProblem(pip.Via))
		}
	}
	if g.Egress && len(g.FloatingIPs) == 0 && strings.TrimSpace(g.FloatingIPSelector) == "" {
		p.add(key+".egress", "needs floating_ips or floating_ip_selector: traffic leaves from the group's floating IPs")
	}
}

// PrivateIPNetwork returns the private network of nets (the server's
// metadata) that the VIP p belongs to, or an error saying why it fits none.
// An alias VIP must lie inside the subnet this server is attached to (the API
// only accepts alias IPs from it); a route VIP inside the network's range but
// outside the attached subnet (a route's destination may not lie inside any
// subnet; the other subnets of the network are not in the metadata, the API
// refuses a route into one of them). It does not touch the host: nets comes
// from the caller.
func (p PrivateIP) Network(nets []metadata.PrivateNetwork) (metadata.PrivateNetwork, error) {
	a := p.Addr()
	if !a.IsValid() {
		return metadata.PrivateNetwork{}, fmt.Errorf("%q is not an IPv4 address", p.IP)
	}
	for _, n := range nets {
		if !n.Network.Contains(a) {
			continue
		}
		label := fmt.Sprintf("network %s (%d, %s)", n.NetworkName, n.NetworkID, n.Network)
		if a == n.IP || slices.Contains([]netip.Addr{n.Network.Masked().Addr(), n.Gateway}, a) {
			return n, fmt.Errorf("%s is the server's own address, the network address or the gateway of %s", a, label)
		}
		switch p.Via {
		case ViaAlias:
			if !n.Subnet.IsValid() || !n.Subnet.Contains(a) {
				return n, fmt.Errorf("%s is outside subnet %s of %s: an alias VIP must lie in the subnet the server is attached to", a, n.Subnet, label)
			}
		case ViaRoute:
			if n.Subnet.IsValid() && n.Subnet.Contains(a) {
				return n, fmt.Errorf("%s is inside subnet %s of %s: a route VIP must lie in the network's range but outside every subnet", a, n.Subnet, label)
			}
		default:
			return n, fmt.Errorf("via %q is not %s", string(p.Via), privateIPKinds)
		}
		return n, nil
	}
	return metadata.PrivateNetwork{}, fmt.Errorf("%s is in none of this server's private networks", a)
}

// CheckPrivateIPs checks every group's private VIPs against the server's
// private networks from the metadata (see PrivateIP.Network). It
// runs at start-up, after Validate, and returns an errors.Join of
// *FieldError naming each VIP's key, or nil.
func (c Config) CheckPrivateIPs(nets []metadata.PrivateNetwork) error {
	var p problems
	for i, g := range c.Groups {
		for j, pip := range g.PrivateIPs {
			if _, err := pip.Network(nets); err != nil {
				p.add(fmt.Sprintf("groups[%d].private_ips[%d].ip", i, j), "%v", err)
			}
		}
	}
	return errors.Join(p...)
}

// GroupPrivateIPs returns the private VIPs of every group, in the order of
// the configuration: the addresses that the groups, not the private-network
// reconciler, configure and remove (netconf.Options.GroupIPs).
func (c Config) GroupPrivateIPs() []netip.Addr {
	var out []netip.Addr
	for _, g := range c.Groups {
		for _, p := range g.PrivateIPs {
			if a := p.Addr(); a.IsValid() && !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// EgressGroups returns the names of the groups with egress: true, in the
// order of the configuration, which decides between two such groups held
// at once (netconf.DesiredEgress).
func (c Config) EgressGroups() []string {
	var out []string
	for _, g := range c.Groups {
		if g.Egress {
			out = append(out, g.Name)
		}
	}
	return out
}
