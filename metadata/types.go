// Package metadata reads the Hetzner Cloud server metadata service.
//
// The service lives at http://169.254.169.254/hetzner/v1/metadata and serves a
// YAML summary plus one sub-path per key. Values are parsed into typed Go
// values (net/netip for addresses) and validated: a malformed value is an
// error naming the field, never a zero value.
package metadata

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
)

// DefaultEndpoint is the metadata base URL on every Hetzner Cloud server.
const DefaultEndpoint = "http://169.254.169.254/hetzner/v1/metadata"

// Summary is the metadata summary document (GET {endpoint}).
type Summary struct {
	// Hostname is the server name as set in the API.
	Hostname string
	// InstanceID is the server ID. It identifies "self"; the hostname does not.
	InstanceID int64
	// PublicIPv4 is the primary public IPv4 address, or the zero Addr when
	// the server has none.
	PublicIPv4 netip.Addr
	// AvailabilityZone is e.g. "hel1-dc2".
	AvailabilityZone string
	// Region is the network zone, e.g. "eu-central".
	Region string
	// Extra holds every key the reference does not document (real servers
	// send network-config, public-keys, local-ipv4, ...), decoded as generic
	// YAML values. It is never an error to receive one.
	Extra map[string]any
}

// PrivateNetwork is one entry of the private-networks document. Values from
// ParsePrivateNetworks are validated: IP, Gateway and every alias are IPv4
// addresses inside Network, MACAddress has 6 bytes and NetworkID is positive.
// AliasIPs is nil when there are none; Subnet is the zero Prefix when the
// document leaves it out.
type PrivateNetwork struct {
	IP           netip.Addr       // ip
	AliasIPs     []netip.Addr     // alias_ips
	InterfaceNum int              // interface_num
	MACAddress   net.HardwareAddr // mac_address
	NetworkID    int64            // network_id
	NetworkName  string           // network_name
	Network      netip.Prefix     // network
	Subnet       netip.Prefix     // subnet
	Gateway      netip.Addr       // gateway
}

// Equal reports whether n and o describe the same attachment: every field
// equal, addresses and prefixes by ==, AliasIPs element by element in order
// and MACAddress byte by byte. A nil and an empty AliasIPs are equal, as the
// document's "alias_ips: []" and a missing key mean the same.
func (n PrivateNetwork) Equal(o PrivateNetwork) bool {
	return n.IP == o.IP &&
		slices.Equal(n.AliasIPs, o.AliasIPs) &&
		n.InterfaceNum == o.InterfaceNum &&
		bytes.Equal(n.MACAddress, o.MACAddress) &&
		n.NetworkID == o.NetworkID &&
		n.NetworkName == o.NetworkName &&
		n.Network == o.Network &&
		n.Subnet == o.Subnet &&
		n.Gateway == o.Gateway
}

// EqualPrivateNetworks reports whether a and b hold equal entries in the same
// order; a nil and an empty slice are equal. The order counts because it is
// the service's order: a reordered document is a changed document.
func EqualPrivateNetworks(a, b []PrivateNetwork) bool {
	return slices.EqualFunc(a, b, PrivateNetwork.Equal)
}

// ClonePrivateNetworks returns a deep copy of pns that shares no memory with
// it (AliasIPs and MACAddress included), so either may be modified. Nil stays
// nil, an empty slice stays empty and non-nil, and so do the nested slices.
func ClonePrivateNetworks(pns []PrivateNetwork) []PrivateNetwork {
	out := slices.Clone(pns)
	for i := range out {
		out[i].AliasIPs = slices.Clone(out[i].AliasIPs)
		out[i].MACAddress = slices.Clone(out[i].MACAddress)
	}
	return out
}
