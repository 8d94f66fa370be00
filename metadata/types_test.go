package metadata_test

import (
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hc-agent/hc-agent/metadata"
)

// privateNetworkFieldCases changes one field of a valid entry each; the
// name is the field's Go name so TestPrivateNetworkEqualCoversEveryField
// can see that no field is left out.
var privateNetworkFieldCases = []struct {
	field  string
	change func(*metadata.PrivateNetwork)
}{
	{"IP", func(p *metadata.PrivateNetwork) { p.IP = netip.MustParseAddr("10.0.0.9") }},
	{"AliasIPs", func(p *metadata.PrivateNetwork) { p.AliasIPs[1] = netip.MustParseAddr("10.0.0.9") }},
	{"InterfaceNum", func(p *metadata.PrivateNetwork) { p.InterfaceNum = 7 }},
	{"MACAddress", func(p *metadata.PrivateNetwork) { p.MACAddress[5] ^= 1 }},
	{"NetworkID", func(p *metadata.PrivateNetwork) { p.NetworkID = 99 }},
	{"NetworkName", func(p *metadata.PrivateNetwork) { p.NetworkName = "other" }},
	{"Network", func(p *metadata.PrivateNetwork) { p.Network = netip.MustParsePrefix("10.0.0.0/16") }},
	{"Subnet", func(p *metadata.PrivateNetwork) { p.Subnet = netip.MustParsePrefix("10.0.1.0/24") }},
	{"Gateway", func(p *metadata.PrivateNetwork) { p.Gateway = netip.MustParseAddr("10.0.0.254") }},
}

func TestPrivateNetworkEqualCoversEveryField(t *testing.T) {
	covered := make(map[string]bool)
	for _, tc := range privateNetworkFieldCases {
		covered[tc.field] = true
	}
	for f := range reflect.TypeFor[metadata.PrivateNetwork]().Fields() {
		assert.True(t, covered[f.Name], "field %s has no case in privateNetworkFieldCases (and maybe not in Equal)", f.Name)
	}
}

func TestPrivateNetworkEqual(t *testing.T) {
	// Every case differs from the reference entry in one field.
	for _, tc := range privateNetworkFieldCases {
		t.Run(tc.field, func(t *testing.T) {
			a := refNetworks()[0]
			b := refNetworks()[0]
			tc.change(&b)
			assert.False(t, a.Equal(b), "entries differing in %s are equal", tc.field)
			assert.False(t, b.Equal(a), "entries differing in %s are equal (reversed)", tc.field)
		})
	}

	tests := []struct {
		name string
		a, b metadata.PrivateNetwork
		want bool
	}{
		{"same values, separate memory", refNetworks()[0], refNetworks()[0], true},
		{"zero values", metadata.PrivateNetwork{}, metadata.PrivateNetwork{}, true},
		{"nil and empty AliasIPs", pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = nil }),
			pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = []netip.Addr{} }), true},
		{"alias order counts", pn(nil), pn(func(p *metadata.PrivateNetwork) { p.AliasIPs[0], p.AliasIPs[1] = p.AliasIPs[1], p.AliasIPs[0] }), false},
		{"one alias more", pn(nil), pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = append(p.AliasIPs, netip.MustParseAddr("10.0.0.5")) }), false},
		{"no aliases against some", pn(func(p *metadata.PrivateNetwork) { p.AliasIPs = nil }), pn(nil), false},
		{"no MAC against a MAC", pn(func(p *metadata.PrivateNetwork) { p.MACAddress = nil }), pn(nil), false},
		{"MAC text case does not matter", pn(func(p *metadata.PrivateNetwork) { p.MACAddress = mustMAC("86:00:00:2A:7D:E0") }), pn(nil), true},
		{"zero Subnet against a Subnet", pn(func(p *metadata.PrivateNetwork) { p.Subnet = netip.Prefix{} }), pn(nil), false},
		{"same prefix bits, other length", pn(func(p *metadata.PrivateNetwork) { p.Network = netip.MustParsePrefix("10.0.0.0/9") }), pn(nil), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.a.Equal(tc.b), "a.Equal(b)")
			assert.Equal(t, tc.want, tc.b.Equal(tc.a), "b.Equal(a)")
		})
	}
}

func TestEqualPrivateNetworks(t *testing.T) {
	ref := refNetworks()
	tests := []struct {
		name string
		a, b []metadata.PrivateNetwork
		want bool
	}{
		{"both nil", nil, nil, true},
		{"nil and empty", nil, []metadata.PrivateNetwork{}, true},
		{"same entries", refNetworks(), refNetworks(), true},
		{"other order", refNetworks(), []metadata.PrivateNetwork{ref[1], ref[0]}, false},
		{"one entry less", refNetworks(), ref[:1], false},
		{"empty against some", []metadata.PrivateNetwork{}, refNetworks(), false},
		{"second entry differs", refNetworks(), []metadata.PrivateNetwork{ref[0], pn(nil)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, metadata.EqualPrivateNetworks(tc.a, tc.b), "EqualPrivateNetworks(a, b)")
			assert.Equal(t, tc.want, metadata.EqualPrivateNetworks(tc.b, tc.a), "EqualPrivateNetworks(b, a)")
		})
	}
}

func TestClonePrivateNetworks(t *testing.T) {
	// Each case builds its input afresh, so the expectation never shares
	// memory with what ClonePrivateNetworks returned.
	tests := []struct {
		name string
		make func() []metadata.PrivateNetwork
	}{
		{"nil", func() []metadata.PrivateNetwork { return nil }},
		{"empty", func() []metadata.PrivateNetwork { return []metadata.PrivateNetwork{} }},
		{"reference", refNetworks},
		{"empty nested slices", func() []metadata.PrivateNetwork {
			return []metadata.PrivateNetwork{{AliasIPs: []netip.Addr{}, MACAddress: net.HardwareAddr{}}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.make()
			got := metadata.ClonePrivateNetworks(in)
			// assert.Equal tells nil from empty, at every level.
			assert.Equal(t, tc.make(), got)
			for i := range got {
				for _, c := range privateNetworkFieldCases {
					if len(got[i].AliasIPs) < 2 && c.field == "AliasIPs" || len(got[i].MACAddress) < 6 && c.field == "MACAddress" {
						continue // the change would index out of range
					}
					c.change(&got[i])
				}
			}
			assert.Equal(t, tc.make(), in, "changing the clone changed the original")
		})
	}
}
