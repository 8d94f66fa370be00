package netconf

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
)

// Networks of the reference example (seed: Server Metadata, private-networks).
func nwTest1() metadata.PrivateNetwork {
	return metadata.PrivateNetwork{
		IP:           netip.MustParseAddr("10.0.0.2"),
		AliasIPs:     []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")},
		InterfaceNum: 1,
		MACAddress:   mustMAC("86:00:00:2a:7d:e0"),
		NetworkID:    1234,
		NetworkName:  "nw-test1",
		Network:      netip.MustParsePrefix("10.0.0.0/8"),
		Subnet:       netip.MustParsePrefix("10.0.0.0/24"),
		Gateway:      netip.MustParseAddr("10.0.0.1"),
	}
}

func nwTest2() metadata.PrivateNetwork {
	return metadata.PrivateNetwork{
		IP:           netip.MustParseAddr("192.168.0.2"),
		AliasIPs:     []netip.Addr{},
		InterfaceNum: 2,
		MACAddress:   mustMAC("86:00:00:2a:7d:e1"),
		NetworkID:    4321,
		NetworkName:  "nw-test2",
		Network:      netip.MustParsePrefix("192.168.0.0/16"),
		Subnet:       netip.MustParsePrefix("192.168.0.0/24"),
		Gateway:      netip.MustParseAddr("192.168.0.1"),
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// render prints a State as sorted-by-construction text for comparisons.
func render(st State) string {
	var b strings.Builder
	if st.Disabled {
		b.WriteString("disabled\n")
	}
	for _, n := range st.Networks {
		b.WriteString(n.Label() + " mac " + n.MAC.String() + " mtu " + strconv.Itoa(n.MTU) + "\n")
		for _, a := range n.Addrs {
			b.WriteString("  addr " + a.Prefix.String() + " (" + a.Why + ")\n")
		}
		for _, r := range n.Routes {
			b.WriteString("  route " + r.String() + " (" + r.Why + ")\n")
		}
	}
	for _, m := range st.Ignored {
		b.WriteString("ignored " + m.String() + "\n")
	}
	if st.PinMetadataRoute {
		b.WriteString("pin metadata route\n")
	}
	for _, p := range st.Problems {
		b.WriteString("problem " + p + "\n")
	}
	return b.String()
}

func TestDesired(t *testing.T) {
	bad := nwTest2()
	bad.MACAddress = mustMAC("96:00:00:00:00:01")
	dupAlias := nwTest2()
	dupAlias.AliasIPs = []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("192.168.0.9"), netip.MustParseAddr("192.168.0.9")}
	unordered := nwTest1()
	unordered.InterfaceNum = 3

	tests := []struct {
		name string
		nets []metadata.PrivateNetwork
		opts Options
		want string
	}{
		{
			name: "no networks",
			want: "",
		},
		{
			name: "reference example with defaults",
			nets: []metadata.PrivateNetwork{nwTest1(), nwTest2()},
			want: `network nw-test1 1234 mac 86:00:00:2a:7d:e0 mtu 1450
  addr 10.0.0.2/32 (ip)
  addr 10.0.0.3/32 (alias ip)
  addr 10.0.0.4/32 (alias ip)
  route 10.0.0.1/32 scope link (gateway)
  route 10.0.0.0/8 via 10.0.0.1 (network)
network nw-test2 4321 mac 86:00:00:2a:7d:e1 mtu 1450
  addr 192.168.0.2/32 (ip)
  route 192.168.0.1/32 scope link (gateway)
  route 192.168.0.0/16 via 192.168.0.1 (network)
`,
		},
		{
			name: "sorted by interface number, default route only on the first",
			nets: []metadata.PrivateNetwork{unordered, nwTest2()},
			opts: Options{MTU: 1400, DefaultRoute: true},
			want: `network nw-test2 4321 mac 86:00:00:2a:7d:e1 mtu 1400
  addr 192.168.0.2/32 (ip)
  route 192.168.0.1/32 scope link (gateway)
  route 192.168.0.0/16 via 192.168.0.1 (network)
  route 0.0.0.0/0 via 192.168.0.1 metric 1024 (default route)
network nw-test1 1234 mac 86:00:00:2a:7d:e0 mtu 1400
  addr 10.0.0.2/32 (ip)
  addr 10.0.0.3/32 (alias ip)
  addr 10.0.0.4/32 (alias ip)
  route 10.0.0.1/32 scope link (gateway)
  route 10.0.0.0/8 via 10.0.0.1 (network)
`,
		},
		{
			name: "default route metric configurable",
			nets: []metadata.PrivateNetwork{nwTest2()},
			opts: Options{DefaultRoute: true, DefaultRouteMetric: 2000},
			want: `network nw-test2 4321 mac 86:00:00:2a:7d:e1 mtu 1450
  addr 192.168.0.2/32 (ip)
  route 192.168.0.1/32 scope link (gateway)
  route 192.168.0.0/16 via 192.168.0.1 (network)
  route 0.0.0.0/0 via 192.168.0.1 metric 2000 (default route)
`,
		},
		{
			name: "exclude by id and by name",
			nets: []metadata.PrivateNetwork{nwTest1(), nwTest2()},
			opts: Options{Exclude: []string{"1234", "nw-test2"}, PinMetadataRoute: true},
			want: `ignored 86:00:00:2a:7d:e0
ignored 86:00:00:2a:7d:e1
pin metadata route
`,
		},
		{
			name: "disabled manages nothing",
			nets: []metadata.PrivateNetwork{nwTest1()},
			opts: Options{Disabled: true, PinMetadataRoute: true},
			want: "disabled\n",
		},
		{
			name: "public mac is refused, duplicate alias ips collapse",
			nets: []metadata.PrivateNetwork{bad, dupAlias},
			want: `network nw-test2 4321 mac 86:00:00:2a:7d:e1 mtu 1450
  addr 192.168.0.2/32 (ip)
  addr 192.168.0.9/32 (alias ip)
  route 192.168.0.1/32 scope link (gateway)
  route 192.168.0.0/16 via 192.168.0.1 (network)
problem network nw-test2 4321: mac address "96:00:00:00:00:01" is not a private NIC (86:00:00:…)
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(Desired(tt.nets, tt.opts))
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDesiredIsPure(t *testing.T) {
	nets := []metadata.PrivateNetwork{nwTest2(), nwTest1()}
	a := render(Desired(nets, Options{DefaultRoute: true}))
	b := render(Desired(nets, Options{DefaultRoute: true}))
	require.Equal(t, a, b)
	assert.Equal(t, "86:00:00:2a:7d:e1", nets[0].MACAddress.String(), "input order is not modified")
}

func TestChangeString(t *testing.T) {
	c := Change{Op: OpAdd, Kind: "address", Object: "10.0.0.2/32", Dev: "ens10", Reason: "network nw-test1 1234: ip"}
	assert.Equal(t, "add address 10.0.0.2/32 dev ens10 (network nw-test1 1234: ip)", c.String())
}

func TestIsPrivateMAC(t *testing.T) {
	for mac, want := range map[string]bool{
		"86:00:00:2a:7d:e0": true,
		"96:00:00:2a:7d:e0": false,
		"86:00:01:2a:7d:e0": false,
	} {
		assert.Equal(t, want, IsPrivateMAC(mustMAC(mac)), mac)
	}
	assert.False(t, IsPrivateMAC(nil))
}
