package floatingip

import (
	"context"
	"net/netip"
	"sync"
)

// Egress is told which floating addresses a group with egress: true holds,
// so that outgoing traffic leaves from them. *netconf.EgressController
// implements it; Set with nil ends the group's egress.
type Egress interface {
	Set(ctx context.Context, group string, held []netip.Addr) error
}

// EgressFloatingIPs is the floating IP Handler of a group with egress: the
// server sends its outgoing internet traffic from the group's floating IPs
// while it holds them, and only then: egress starts once the addresses are
// configured here and the API says this server holds them (after a verified
// move, or at adoption), not on the fast path before the move, when the
// cloud still routes replies to the old holder. It ends before the
// addresses are removed, and as soon as a read says another server holds
// them. Every read applies the egress again, so a changed default route is
// followed at the group's refresh interval.
//
// Egress never stands in the way of failover: its errors are not returned
// (the Egress implementation logs them, once until they change).
type EgressFloatingIPs struct {
	*FloatingIPs
	group  string
	egress Egress

	mu     sync.Mutex
	holder int64
}

var _ Handler = (*EgressFloatingIPs)(nil)

// NewEgressFloatingIPs wraps the floating IP handler h of group.
func NewEgressFloatingIPs(h *FloatingIPs, group string, e Egress) *EgressFloatingIPs {
	return &EgressFloatingIPs{FloatingIPs: h, group: group, egress: e}
}

// Holder reads the floating IPs (FloatingIPs.Holder) and applies the egress.
func (h *EgressFloatingIPs) Holder(ctx context.Context) (int64, error) {
	id, err := h.FloatingIPs.Holder(ctx)
	if err != nil {
		return id, err
	}
	h.mu.Lock()
	h.holder = id
	h.mu.Unlock()
	h.apply(ctx)
	return id, nil
}

// Configure configures the floating IPs and, if this server holds them,
// starts the egress.
func (h *EgressFloatingIPs) Configure(ctx context.Context) error {
	if err := h.FloatingIPs.Configure(ctx); err != nil {
		return err
	}
	h.apply(ctx)
	return nil
}

// Unconfigure ends the egress, then removes the floating IPs (also when
// ending the egress failed: the kernel drops the IPv4 routes whose source
// address goes away).
func (h *EgressFloatingIPs) Unconfigure(ctx context.Context) error {
	_ = h.egress.Set(ctx, h.group, nil)
	return h.FloatingIPs.Unconfigure(ctx)
}

// apply sets the egress from what is configured and held now.
func (h *EgressFloatingIPs) apply(ctx context.Context) {
	h.mu.Lock()
	holds := h.holder == h.cfg.Self
	h.mu.Unlock()
	h.FloatingIPs.mu.Lock()
	configured := h.FloatingIPs.configured
	h.FloatingIPs.mu.Unlock()
	ps, err := h.prefixes()
	if !holds || !configured || err != nil {
		_ = h.egress.Set(ctx, h.group, nil)
		return
	}
	held := make([]netip.Addr, 0, len(ps))
	for _, p := range ps {
		held = append(held, p.Addr())
	}
	_ = h.egress.Set(ctx, h.group, held)
}
