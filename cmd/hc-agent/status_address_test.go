package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hc-agent/hc-agent/floatingip"
)

func TestAddressLabel(t *testing.T) {
	tests := []struct {
		a    floatingip.AddressStatus
		kind floatingip.AddressKind
		want string
	}{
		{a: floatingip.AddressStatus{IP: "203.0.113.7"}, kind: floatingip.KindFloatingIP, want: "203.0.113.7"},
		{a: floatingip.AddressStatus{IP: "203.0.113.7"}, want: "203.0.113.7"},
		{a: floatingip.AddressStatus{ID: 7, IP: "10.0.1.100"}, kind: floatingip.KindAliasIP, want: "10.0.1.100 (alias ip, network 7)"},
		{a: floatingip.AddressStatus{ID: 7, IP: "10.0.2.50", Kind: floatingip.KindRouteIP}, kind: floatingip.KindMixed, want: "10.0.2.50 (route, network 7)"},
		{a: floatingip.AddressStatus{IP: "203.0.113.7", Kind: floatingip.KindFloatingIP}, kind: floatingip.KindMixed, want: "203.0.113.7"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			assert.Equal(t, tc.want, addressLabel(tc.a, tc.kind))
		})
	}
	assert.Equal(t, "FLOATING IP", addressHeader(floatingip.KindFloatingIP))
	assert.Equal(t, "FLOATING IP", addressHeader(""))
	assert.Equal(t, "ADDRESS", addressHeader(floatingip.KindMixed))
}
