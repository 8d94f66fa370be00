package config

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
)

// testNetworks is the reference's private-networks example: network 1234
// 10.0.0.0/8 with this server in subnet 10.0.0.0/24, network 4321
// 192.168.0.0/16 with subnet 192.168.0.0/24.
func testNetworks() []metadata.PrivateNetwork {
	return []metadata.PrivateNetwork{
		{
			IP: netip.MustParseAddr("10.0.0.2"), AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.0.3")},
			InterfaceNum: 1, MACAddress: net.HardwareAddr{0x86, 0, 0, 0x2a, 0x7d, 0xe0},
			NetworkID: 1234, NetworkName: "nw-test1",
			Network: netip.MustParsePrefix("10.0.0.0/8"), Subnet: netip.MustParsePrefix("10.0.0.0/24"),
			Gateway: netip.MustParseAddr("10.0.0.1"),
		},
		{
			IP: netip.MustParseAddr("192.168.0.2"), InterfaceNum: 2, MACAddress: net.HardwareAddr{0x86, 0, 0, 0x2a, 0x7d, 0xe1},
			NetworkID: 4321, NetworkName: "nw-test2",
			Network: netip.MustParsePrefix("192.168.0.0/16"), Subnet: netip.MustParsePrefix("192.168.0.0/24"),
			Gateway: netip.MustParseAddr("192.168.0.1"),
		},
	}
}

func TestPrivateIPNetwork(t *testing.T) {
	tests := []struct {
		name    string
		ip      PrivateIP
		wantNet int64  // network ID; 0 with wantErr and no network
		wantErr string // substring; "" means valid
	}{
		{name: "alias in the attached subnet", ip: PrivateIP{IP: "10.0.0.100", Via: ViaAlias}, wantNet: 1234},
		{name: "alias in the second network", ip: PrivateIP{IP: "192.168.0.50", Via: ViaAlias}, wantNet: 4321},
		{name: "route outside the subnet", ip: PrivateIP{IP: "10.0.2.50", Via: ViaRoute}, wantNet: 1234},
		{name: "route in the second network", ip: PrivateIP{IP: "192.168.9.9", Via: ViaRoute}, wantNet: 4321},
		{
			name: "alias outside the subnet", ip: PrivateIP{IP: "10.0.2.50", Via: ViaAlias}, wantNet: 1234,
			wantErr: "10.0.2.50 is outside subnet 10.0.0.0/24 of network nw-test1 (1234, 10.0.0.0/8): an alias VIP must lie in the subnet the server is attached to",
		},
		{
			name: "route inside the subnet", ip: PrivateIP{IP: "10.0.0.100", Via: ViaRoute}, wantNet: 1234,
			wantErr: "10.0.0.100 is inside subnet 10.0.0.0/24 of network nw-test1 (1234, 10.0.0.0/8): a route VIP must lie in the network's range but outside every subnet",
		},
		{name: "in no network", ip: PrivateIP{IP: "172.16.0.5", Via: ViaAlias}, wantErr: "172.16.0.5 is in none of this server's private networks"},
		{name: "own address", ip: PrivateIP{IP: "10.0.0.2", Via: ViaAlias}, wantNet: 1234, wantErr: "is the server's own address"},
		{name: "gateway", ip: PrivateIP{IP: "10.0.0.1", Via: ViaRoute}, wantNet: 1234, wantErr: "the gateway of network nw-test1"},
		{name: "network address", ip: PrivateIP{IP: "192.168.0.0", Via: ViaRoute}, wantNet: 4321, wantErr: "the network address"},
		{name: "not an address", ip: PrivateIP{IP: "x", Via: ViaAlias}, wantErr: `"x" is not an IPv4 address`},
		{name: "unknown kind", ip: PrivateIP{IP: "10.0.0.100", Via: "arp"}, wantNet: 1234, wantErr: `via "arp" is not "alias" or "route"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ip.Network(testNetworks())
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantNet, got.NetworkID)
		})
	}
}

func TestCheckPrivateIPs(t *testing.T) {
	c := Default()
	a, b := validGroup("a"), validGroup("b")
	a.PrivateIPs = []PrivateIP{{IP: "10.0.0.100", Via: ViaAlias}, {IP: "10.0.0.101", Via: ViaRoute}}
	b.PrivateIPs = []PrivateIP{{IP: "10.0.5.5", Via: ViaRoute}, {IP: "172.16.0.5", Via: ViaAlias}}
	c.Groups = []Group{a, b}
	require.NoError(t, c.Validate())

	err := c.CheckPrivateIPs(testNetworks())
	require.Error(t, err)
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		require.True(t, errors.As(e, &fe), "%T is a *FieldError", e)
		got = append(got, e.Error())
	}
	assert.Equal(t, []string{
		"groups[0].private_ips[1].ip: 10.0.0.101 is inside subnet 10.0.0.0/24 of network nw-test1 (1234, 10.0.0.0/8): a route VIP must lie in the network's range but outside every subnet",
		"groups[1].private_ips[1].ip: 172.16.0.5 is in none of this server's private networks",
	}, got)

	assert.NoError(t, Default().CheckPrivateIPs(nil), "no private VIPs, nothing to check")
	c.Groups[0].PrivateIPs = c.Groups[0].PrivateIPs[:1]
	c.Groups[1].PrivateIPs = c.Groups[1].PrivateIPs[:1]
	assert.NoError(t, c.CheckPrivateIPs(testNetworks()))
	assert.Error(t, c.CheckPrivateIPs(nil), "a server without private networks cannot hold private VIPs")
}

func TestGroupPrivateIPsAndEgressGroups(t *testing.T) {
	c := Default()
	a, b, d := validGroup("a"), validGroup("b"), validGroup("d")
	a.PrivateIPs = []PrivateIP{{IP: "10.0.0.100", Via: ViaAlias}, {IP: "bad", Via: ViaAlias}}
	b.PrivateIPs = []PrivateIP{{IP: "10.0.5.5", Via: ViaRoute}, {IP: "10.0.0.100", Via: ViaRoute}}
	b.Egress, d.Egress = true, true
	c.Groups = []Group{a, b, d}
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("10.0.5.5")}, c.GroupPrivateIPs())
	assert.Equal(t, []string{"b", "d"}, c.EgressGroups())
	assert.Nil(t, Default().GroupPrivateIPs())
	assert.Nil(t, Default().EgressGroups())
}
