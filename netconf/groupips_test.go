package netconf

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hc-agent/hc-agent/metadata"
)

func TestDesiredLeavesGroupIPs(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		groupIPs []netip.Addr
		want     string
	}{
		{
			name: "no group IPs: every alias is configured",
			want: "network nw-test1 1234 mac 86:00:00:2a:7d:e0 mtu 1450\n" +
				"  addr 10.0.0.2/32 (ip)\n  addr 10.0.0.3/32 (alias ip)\n  addr 10.0.0.4/32 (alias ip)\n" +
				"  route 10.0.0.1/32 scope link (gateway)\n  route 10.0.0.0/8 via 10.0.0.1 (network)\n",
		},
		{
			name:     "an alias VIP of a group is left to the group",
			groupIPs: []netip.Addr{a("10.0.0.4"), a("10.0.9.9"), a("::ffff:10.0.0.4")},
			want: "network nw-test1 1234 mac 86:00:00:2a:7d:e0 mtu 1450\n" +
				"  addr 10.0.0.2/32 (ip)\n  addr 10.0.0.3/32 (alias ip)\n" +
				"  route 10.0.0.1/32 scope link (gateway)\n  route 10.0.0.0/8 via 10.0.0.1 (network)\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := Desired([]metadata.PrivateNetwork{nwTest1()}, Options{GroupIPs: tc.groupIPs})
			assert.Equal(t, tc.want, render(st))
			if tc.groupIPs != nil {
				assert.Equal(t, []netip.Addr{a("10.0.0.4"), a("10.0.9.9")}, st.GroupIPs, "IPv4, deduplicated, sorted")
			}
		})
	}
}
