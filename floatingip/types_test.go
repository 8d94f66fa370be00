package floatingip

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostPrefix(t *testing.T) {
	tests := []struct {
		name string
		fip  FloatingIP
		host string
		want string
	}{
		{"ipv4", FloatingIP{Type: "ipv4", IP: netip.MustParseAddr("203.0.113.7")}, "", "203.0.113.7/32"},
		{"ipv6 config's default host", FloatingIP{Type: "ipv6", IP: netip.MustParseAddr("2001:db8:1:2::"), Network: netip.MustParsePrefix("2001:db8:1:2::/64")}, "::1", "2001:db8:1:2::1/64"},
		// No default here: the daemon passes config's ipv6_host.
		{"ipv6 without host", FloatingIP{Type: "ipv6", IP: netip.MustParseAddr("2001:db8:1:2::"), Network: netip.MustParsePrefix("2001:db8:1:2::/64")}, "", ""},
		{"ipv6 custom host", FloatingIP{Type: "ipv6", IP: netip.MustParseAddr("2001:db8:1:2::"), Network: netip.MustParsePrefix("2001:db8:1:2::/64")}, "::a:b", "2001:db8:1:2::a:b/64"},
		{"ipv6 without network", FloatingIP{Type: "ipv6", IP: netip.MustParseAddr("2001:db8:1:2::")}, "::1", "2001:db8:1:2::1/64"},
		{"bad ipv4", FloatingIP{Type: "ipv4", IP: netip.MustParseAddr("2001:db8::1")}, "", ""},
		{"bad type", FloatingIP{Type: "ipv5"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var host netip.Addr
			if tt.host != "" {
				host = netip.MustParseAddr(tt.host)
			}
			got, err := HostPrefix(tt.fip, host)
			if tt.want == "" {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.String())
		})
	}
}
