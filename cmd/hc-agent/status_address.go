package main

import (
	"fmt"

	"github.com/hc-agent/hc-agent/floatingip"
)

// addressHeader is the status table's heading for a group's addresses:
// FLOATING IP for a group of floating IPs only (as before private VIPs).
func addressHeader(kind floatingip.AddressKind) string {
	if kind == "" || kind == floatingip.KindFloatingIP {
		return "FLOATING IP"
	}
	return "ADDRESS"
}

// addressLabel names one address of a group in the status table; a private
// VIP says its kind and network, e.g. "10.0.1.100 (alias ip, network 7)".
func addressLabel(a floatingip.AddressStatus, groupKind floatingip.AddressKind) string {
	kind := a.Kind
	if kind == "" {
		kind = groupKind
	}
	switch kind {
	case floatingip.KindAliasIP:
		return fmt.Sprintf("%s (alias ip, network %d)", a.IP, a.ID)
	case floatingip.KindRouteIP:
		return fmt.Sprintf("%s (route, network %d)", a.IP, a.ID)
	}
	return a.IP
}
