package netconf

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEgressDsts(t *testing.T) {
	// The IPv4 egress prefixes cover every address except link-local, and
	// each address exactly once.
	assert.Len(t, egressDsts4, 16, "one prefix per bit of 169.254.0.0/16")
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"0.0.0.0", true}, {"1.1.1.1", true}, {"127.0.0.1", true}, {"169.253.255.255", true},
		{"169.254.0.0", false}, {"169.254.169.254", false}, {"169.254.255.255", false},
		{"169.255.0.0", true}, {"172.31.1.1", true}, {"203.0.113.7", true}, {"255.255.255.255", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			n := 0
			for _, p := range egressDsts4 {
				if p.Contains(a) {
					n++
				}
			}
			if tc.want {
				assert.Equal(t, 1, n, "covered exactly once")
			} else {
				assert.Equal(t, 0, n, "not covered")
			}
		})
	}
	for i := 1; i < len(egressDsts4); i++ {
		assert.Less(t, egressDsts4[i-1].Addr().Compare(egressDsts4[i].Addr()), 0, "sorted")
	}
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("::/1"), netip.MustParsePrefix("8000::/1")}, egressDsts6)

	for _, tc := range []struct {
		p    string
		want bool
	}{
		{"0.0.0.0/1", true}, {"169.0.0.0/9", true}, {"169.255.0.0/16", true}, {"8000::/1", true},
		{"0.0.0.0/0", false}, {"10.0.0.0/8", false}, {"169.254.169.254/32", false}, {"::/0", false},
	} {
		assert.Equal(t, tc.want, EgressDst(netip.MustParsePrefix(tc.p)), tc.p)
	}
}

func TestComplement(t *testing.T) {
	got := complement(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.128.0.0/10"))
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/9"),
		netip.MustParsePrefix("10.192.0.0/10"),
	}
	assert.Equal(t, want, got)
	assert.Empty(t, complement(netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")))
}

func TestDesiredEgress(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name string
		held []netip.Addr
		want Egress
	}{
		{name: "nothing held", want: Egress{}},
		{name: "ipv4 only", held: []netip.Addr{a("203.0.113.10")}, want: Egress{V4: a("203.0.113.10")}},
		{name: "both families", held: []netip.Addr{a("2001:db8:ff::1"), a("203.0.113.10")}, want: Egress{V4: a("203.0.113.10"), V6: a("2001:db8:ff::1")}},
		{name: "first of each family wins", held: []netip.Addr{a("203.0.113.20"), a("203.0.113.10"), a("2001:db8:2::1"), a("2001:db8:1::1")},
			want: Egress{V4: a("203.0.113.20"), V6: a("2001:db8:2::1")}},
		{name: "mapped ipv4 is ipv4", held: []netip.Addr{a("::ffff:203.0.113.10")}, want: Egress{V4: a("203.0.113.10")}},
		{name: "zero and zoned addresses are skipped", held: []netip.Addr{{}, a("fe80::1%eth0"), a("2001:db8::1")}, want: Egress{V6: a("2001:db8::1")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, DesiredEgress(tc.held))
		})
	}
}
