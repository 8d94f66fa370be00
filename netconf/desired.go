// Package netconf configures the host side of a Hetzner Cloud server: the
// private networks from its metadata, and the floating IP addresses on its
// public NIC (fipdesired.go, fipaddrs_linux.go) with the same contract.
//
// It is split the way every reconciler in hc-agent is: Desired is a pure
// function from metadata to the wanted state (this file, no netlink, builds
// everywhere), and Plan/Apply compare that with what the kernel has and make
// the smallest set of netlink writes to get there (apply_linux.go). Apply only
// ever removes what hc-agent owns: routes carrying RouteProtocol, and the
// addresses recorded in an Owned record. Configuration that a DHCP client or
// the image already put in place counts as done and is left alone.
package netconf

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hc-agent/hc-agent/metadata"
)

// RouteProtocol is the rtm_protocol value hc-agent puts on every route it
// installs, so that it can later remove exactly its own routes and nothing
// else (the same technique as the GCE guest agent, which uses 66).
//
// 71 is unassigned: the kernel's RTPROT_* list (include/uapi/linux/rtnetlink.h)
// uses 0-4, 8-18, 42, 99 and 186-192, /etc/iproute2/rt_protos names no other
// value, and the well-known third-party users (GCE 66, Calico 80) do not
// collide with it. Operators can add "71 hc-agent" to
// /etc/iproute2/rt_protos.d/ so that `ip route` prints the name.
const RouteProtocol = 71

// Defaults used for the zero values of Options.
const (
	DefaultMTU                = 1450
	DefaultDefaultRouteMetric = 1024
	DefaultPollInterval       = 30 * time.Second
)

// PrivateMACPrefix is the first three bytes of every private-network NIC's MAC
// address on Hetzner Cloud (public NICs start with 96:).
var PrivateMACPrefix = net.HardwareAddr{0x86, 0x00, 0x00}

// MetadataAddr is the address of the metadata service.
var MetadataAddr = netip.MustParseAddr("169.254.169.254")

// IsPrivateMAC reports whether mac belongs to a private-network NIC.
func IsPrivateMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x86 && mac[1] == 0x00 && mac[2] == 0x00
}

// Source provides the private networks from the metadata service.
// *metadata.Client satisfies it.
type Source interface {
	PrivateNetworks(ctx context.Context) ([]metadata.PrivateNetwork, error)
}

// Options configures netconf. The zero value manages every private network
// with the defaults; the daemon maps config.PrivateNetworks onto it.
type Options struct {
	// Disabled turns private network management off. Nothing is added and,
	// deliberately, nothing is removed: turning management off leaves the
	// host as it is instead of tearing the networks down.
	Disabled bool
	// MTU of every private NIC; 0 means DefaultMTU.
	MTU int
	// DefaultRoute installs a default route via the gateway of the first
	// private network (lowest interface_num).
	DefaultRoute bool
	// DefaultRouteMetric is the metric of that default route; 0 means
	// DefaultDefaultRouteMetric, high so that the public default route wins.
	DefaultRouteMetric int
	// Exclude lists network IDs or names that hc-agent leaves alone entirely.
	Exclude []string
	// PinMetadataRoute adds a /32 route to the metadata service via the
	// public NIC's default gateway, so that a route pushed by the private
	// DHCP server cannot black-hole metadata.
	PinMetadataRoute bool
	// PollInterval is the period of the metadata poll (jittered); 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// GroupIPs are the private VIPs of failover groups (config
	// groups[].private_ips). The group configures, owns and removes them;
	// netconf neither adds nor removes them, even when the metadata lists
	// one as an alias IP: the metadata of a new holder lists the VIP some
	// time after the group added it, and the old holder's drops it some
	// time after the group removed it, so following the metadata would
	// undo a move in between.
	GroupIPs []netip.Addr
}

func (o Options) mtu() int {
	if o.MTU <= 0 {
		return DefaultMTU
	}
	return o.MTU
}

func (o Options) defaultRouteMetric() int {
	if o.DefaultRouteMetric <= 0 {
		return DefaultDefaultRouteMetric
	}
	return o.DefaultRouteMetric
}

func (o Options) pollInterval() time.Duration {
	if o.PollInterval <= 0 {
		return DefaultPollInterval
	}
	return o.PollInterval
}

func (o Options) excluded(n metadata.PrivateNetwork) bool {
	id := strconv.FormatInt(n.NetworkID, 10)
	for _, e := range o.Exclude {
		e = strings.TrimSpace(e)
		if e == id || (e != "" && e == n.NetworkName) {
			return true
		}
	}
	return false
}

// State is the desired configuration of the private networks.
type State struct {
	// Disabled means management is off: Apply changes nothing.
	Disabled bool
	// Networks holds one entry per managed private network, sorted by
	// interface number.
	Networks []Network
	// Ignored lists the MACs of excluded networks: Apply neither adds to nor
	// removes from these NICs.
	Ignored []net.HardwareAddr
	// PinMetadataRoute asks Apply to pin the metadata route to the public
	// NIC's default gateway.
	PinMetadataRoute bool
	// GroupIPs are left to the failover groups (Options.GroupIPs): never
	// added, never removed, and dropped from the ownership record.
	GroupIPs []netip.Addr
	// Problems lists metadata entries that could not be used, with why.
	Problems []string
}

// Network is the desired configuration of one private NIC.
type Network struct {
	ID     int64
	Name   string
	MAC    net.HardwareAddr
	MTU    int
	Addrs  []Addr
	Routes []Route
}

// Label names the network in change reasons, e.g. "network nw-test1 1234".
func (n Network) Label() string {
	if n.Name == "" {
		return "network " + strconv.FormatInt(n.ID, 10)
	}
	return "network " + n.Name + " " + strconv.FormatInt(n.ID, 10)
}

// Addr is one desired address (always a /32 on Hetzner private networks).
type Addr struct {
	Prefix netip.Prefix
	Why    string // "ip" or "alias ip"
}

// Route is one desired route. A zero Gw means a link-scope route.
type Route struct {
	Dst    netip.Prefix
	Gw     netip.Addr
	Metric int
	Why    string // "gateway", "network", "default route", "metadata pin"
	// OnLink marks the gateway as on the link without a route to it, as
	// images do for the public gateway (netplan's on-link: true); the pin
	// copies it from the public default route.
	OnLink bool
}

// String renders the route like ip-route does, without the device.
func (r Route) String() string {
	s := r.Dst.String()
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	} else {
		s += " scope link"
	}
	if r.Metric != 0 {
		s += " metric " + strconv.Itoa(r.Metric)
	}
	if r.OnLink {
		s += " onlink"
	}
	return s
}

// Desired computes the wanted configuration from the private networks of the
// metadata service. It is pure: same input, same output, no I/O.
//
// For each network: the NIC is the one with the network's MAC (never a name),
// MTU opts.MTU, link up, ip/32 and every alias IP as /32, a link-scope route
// to the gateway and a route to the whole network via the gateway. A default
// route via the gateway of the first network is added only when asked, with a
// high metric.
func Desired(nets []metadata.PrivateNetwork, opts Options) State {
	st := State{Disabled: opts.Disabled}
	if opts.Disabled {
		return st
	}
	st.PinMetadataRoute = opts.PinMetadataRoute
	for _, a := range opts.GroupIPs {
		if a = a.Unmap(); a.Is4() && !slices.Contains(st.GroupIPs, a) {
			st.GroupIPs = append(st.GroupIPs, a)
		}
	}
	slices.SortFunc(st.GroupIPs, netip.Addr.Compare)
	sorted := slices.Clone(nets)
	slices.SortStableFunc(sorted, func(a, b metadata.PrivateNetwork) int {
		if c := a.InterfaceNum - b.InterfaceNum; c != 0 {
			return c
		}
		return strings.Compare(a.MACAddress.String(), b.MACAddress.String())
	})
	seenMAC := map[string]bool{}
	for _, n := range sorted {
		label := Network{ID: n.NetworkID, Name: n.NetworkName}.Label()
		if opts.excluded(n) {
			if len(n.MACAddress) == 6 {
				st.Ignored = append(st.Ignored, slices.Clone(n.MACAddress))
			}
			continue
		}
		if why := invalid(n); why != "" {
			st.Problems = append(st.Problems, label+": "+why)
			continue
		}
		mac := n.MACAddress.String()
		if seenMAC[mac] {
			st.Problems = append(st.Problems, label+": duplicate mac address "+mac)
			continue
		}
		seenMAC[mac] = true

		nw := Network{
			ID:   n.NetworkID,
			Name: n.NetworkName,
			MAC:  slices.Clone(n.MACAddress),
			MTU:  opts.mtu(),
		}
		seenIP := map[netip.Addr]bool{}
		addIP := func(ip netip.Addr, why string) {
			ip = ip.Unmap()
			if !ip.Is4() || seenIP[ip] || st.groupIP(ip) {
				return
			}
			seenIP[ip] = true
			nw.Addrs = append(nw.Addrs, Addr{Prefix: netip.PrefixFrom(ip, 32), Why: why})
		}
		addIP(n.IP, "ip")
		for _, a := range n.AliasIPs {
			addIP(a, "alias ip")
		}
		gw := n.Gateway.Unmap()
		nw.Routes = append(nw.Routes,
			Route{Dst: netip.PrefixFrom(gw, 32), Why: "gateway"},
			Route{Dst: n.Network.Masked(), Gw: gw, Why: "network"},
		)
		if opts.DefaultRoute && len(st.Networks) == 0 {
			nw.Routes = append(nw.Routes, Route{
				Dst:    netip.PrefixFrom(netip.IPv4Unspecified(), 0),
				Gw:     gw,
				Metric: opts.defaultRouteMetric(),
				Why:    "default route",
			})
		}
		st.Networks = append(st.Networks, nw)
	}
	return st
}

// invalid says why a metadata entry cannot be configured, or "".
func invalid(n metadata.PrivateNetwork) string {
	switch {
	case !IsPrivateMAC(n.MACAddress):
		return fmt.Sprintf("mac address %q is not a private NIC (86:00:00:…)", n.MACAddress.String())
	case !n.IP.Unmap().Is4():
		return "ip is not an IPv4 address"
	case !n.Gateway.Unmap().Is4():
		return "gateway is not an IPv4 address"
	case !n.Network.IsValid() || !n.Network.Addr().Is4():
		return "network is not an IPv4 prefix"
	case n.Network.Bits() == 0:
		return "network is 0.0.0.0/0"
	}
	return ""
}

// groupIP reports whether a failover group manages ip.
func (s State) groupIP(ip netip.Addr) bool {
	_, found := slices.BinarySearchFunc(s.GroupIPs, ip, netip.Addr.Compare)
	return found
}

// ignored reports whether mac belongs to an excluded network.
func (s State) ignored(mac net.HardwareAddr) bool {
	for _, m := range s.Ignored {
		if slices.Equal(m, mac) {
			return true
		}
	}
	return false
}

// Op is the kind of a Change.
type Op string

// The operations a plan is made of.
const (
	OpAdd     Op = "add"
	OpReplace Op = "replace"
	OpRemove  Op = "remove"
)

// Change is one step of a plan: what is done to which object on which
// device, and why.
type Change struct {
	Op     Op
	Kind   string // "address", "route", "mtu", "link"
	Object string // e.g. "10.0.0.2/32", "10.0.0.0/8 via 10.0.0.1", "1450", "up"
	Dev    string
	Reason string // e.g. "network nw-test1 1234: ip"
}

// String renders the change, e.g.
// "add address 10.0.0.2/32 dev ens10 (network nw-test1 1234: ip)".
func (c Change) String() string {
	return fmt.Sprintf("%s %s %s dev %s (%s)", c.Op, c.Kind, c.Object, c.Dev, c.Reason)
}

// MetadataRoute is where the kernel would send traffic for the metadata
// service.
type MetadataRoute struct {
	Dev   string     // output device
	MAC   string     // its MAC address
	Gw    netip.Addr // next hop; zero when on-link
	Proto string     // protocol of the chosen route as ip-route names it ("dhcp", "boot"); "" when unknown
}

// String renders the route like ip-route does:
// "via 10.0.0.1 dev enp7s0 (proto dhcp)".
func (m MetadataRoute) String() string {
	s := "dev " + m.Dev
	if m.Gw.IsValid() {
		s = "via " + m.Gw.String() + " " + s
	}
	if m.Proto != "" {
		s += " (proto " + m.Proto + ")"
	}
	return s
}

// MetadataCheck is the outcome of CheckMetadataRoute.
type MetadataCheck struct {
	// Blackholed reports that the kernel routes the metadata service through
	// a private NIC; Route says which.
	Blackholed bool
	Route      MetadataRoute
	// Changes lists the pin that was added (or, in a dry run, would be).
	Changes []Change
}

// Hint is the sentence an operator needs when metadata cannot be read and
// the black hole is the reason, or "" when there is no black hole. pinned
// says whether pin_metadata_route is already set.
func (m MetadataCheck) Hint(pinned bool) string {
	if !m.Blackholed {
		return ""
	}
	s := "a route sends " + MetadataAddr.String() + " " + m.Route.String()
	if pinned {
		return s + "; pin_metadata_route found no public default route to pin it to"
	}
	return s + "; set private_networks.pin_metadata_route: true"
}

// Result is the outcome of one Apply.
type Result struct {
	// Changes lists the writes that were made (or attempted, see the error).
	Changes []Change
	// Writes counts netlink write calls.
	Writes int
	// MissingLinks lists MACs from metadata with no NIC on this host yet.
	MissingLinks []string
	// MetadataBlackholed reports that the kernel would route the metadata
	// service through a private NIC; MetadataRoute says which.
	MetadataBlackholed bool
	MetadataRoute      MetadataRoute

	// Unchanged reports a reconcile that found metadata, the options and
	// the kernel as the last apply that left the kernel as desired, and so
	// did not read the kernel (Reconciler.ReconcileOnce). The other fields
	// then repeat that apply's findings; Changes is empty.
	Unchanged bool

	deferred bool // a needed write was left out (the fight guard)
}

// FormatChanges renders a plan for people, one change per line.
func FormatChanges(changes []Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}
