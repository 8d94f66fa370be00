package netconf

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDesiredFloatingIPs(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		wants FloatingIPWants
		want  []FloatingIPAddr
	}{
		{name: "nothing", wants: nil, want: []FloatingIPAddr{}},
		{name: "owner without prefixes", wants: FloatingIPWants{"manager": nil}, want: []FloatingIPAddr{}},
		{
			name:  "one owner, address order",
			wants: FloatingIPWants{"manager": {p("2001:db8::1/64"), p("203.0.113.2/32"), p("203.0.113.1/32")}},
			want: []FloatingIPAddr{
				{Prefix: p("203.0.113.1/32"), Owners: []string{"manager"}},
				{Prefix: p("203.0.113.2/32"), Owners: []string{"manager"}},
				{Prefix: p("2001:db8::1/64"), Owners: []string{"manager"}},
			},
		},
		{
			name: "shared address once, owners sorted",
			wants: FloatingIPWants{
				"manager":   {p("203.0.113.1/32")},
				"group:web": {p("203.0.113.1/32"), p("203.0.113.9/32")},
			},
			want: []FloatingIPAddr{
				{Prefix: p("203.0.113.1/32"), Owners: []string{"group:web", "manager"}},
				{Prefix: p("203.0.113.9/32"), Owners: []string{"group:web"}},
			},
		},
		{
			name:  "duplicates and invalid prefixes dropped",
			wants: FloatingIPWants{"manager": {p("203.0.113.1/32"), {}, p("203.0.113.1/32")}},
			want:  []FloatingIPAddr{{Prefix: p("203.0.113.1/32"), Owners: []string{"manager"}}},
		},
		{
			name:  "owner without a name wants nothing",
			wants: FloatingIPWants{"": {p("203.0.113.1/32")}},
			want:  []FloatingIPAddr{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DesiredFloatingIPs(tc.wants)
			assert.Equal(t, tc.want, got)
			for _, a := range got {
				assert.Equal(t, a.Prefix.Addr().Is6(), a.NoDAD(), "ipv6 without dad: %v", a)
			}
		})
	}
}
