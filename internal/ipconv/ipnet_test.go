package ipconv

import (
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"ipv4 host", "203.0.113.7/32"},
		{"ipv4 network", "10.0.0.0/16"},
		{"ipv4 default", "0.0.0.0/0"},
		{"ipv6 /64", "2001:db8:1:2::1/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := netip.MustParsePrefix(tt.in)
			n := IPNet(want)
			_, std, err := net.ParseCIDR(tt.in)
			assert.NoError(t, err)
			assert.Equal(t, std.Mask, n.Mask, "mask")
			got, ok := Prefix(n)
			assert.True(t, ok)
			assert.Equal(t, want, got)
		})
	}
}

func TestPrefixEdges(t *testing.T) {
	_, ok := Prefix(nil)
	assert.False(t, ok, "nil")
	_, ok = Prefix(&net.IPNet{IP: net.IP{1, 2, 3}, Mask: net.CIDRMask(24, 32)})
	assert.False(t, ok, "invalid address")
	got, ok := Prefix(&net.IPNet{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(32, 32)})
	assert.True(t, ok)
	assert.Equal(t, netip.MustParsePrefix("192.0.2.1/32"), got, "16-byte IPv4 is unmapped")
}
