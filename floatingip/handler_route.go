package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi"
)

// RouteCloud is the part of the API that route VIPs need. *cloudapi.Client
// implements it.
type RouteCloud interface {
	// GetNetwork reads a network with its subnets and routes.
	GetNetwork(ctx context.Context, id int64) (cloudapi.Network, error)
	// ListServers lists the servers (selector "" is all), to learn which
	// server a route's gateway (a private IP) belongs to.
	ListServers(ctx context.Context, selector string) ([]cloudapi.Server, error)
	AddRoute(ctx context.Context, networkID int64, r cloudapi.Route) (cloudapi.Action, error)
	DeleteRoute(ctx context.Context, networkID int64, r cloudapi.Route) (cloudapi.Action, error)
	actionWaiter
}

// RouteIPs is the Handler of route VIPs: a VIP is held by the server that
// the network's route VIP/32 points to (its gateway is the server's private
// IP); the cloud delivers the VIP's packets there and the holder has the
// VIP as /32 on its private NIC.
//
// The API has no verb to change a route, so a move is delete_route of the
// old route, then add_route of the new one, both awaited; the group
// verifies with Holder (GET /networks/{id}). Between the two actions the
// network has no route for the VIP and the cloud drops its packets: the
// outage of a move is the old holder's failure detection, plus both
// actions (about one action's latency each), not only the add. The order
// cannot be turned around: the API refuses a second route for the same
// destination.
type RouteIPs struct {
	cloud RouteCloud

	privateVIPs // mu guards the fields below too
	// gateways[i] is the gateway of cfg.VIPs[i]'s route as last read, the
	// zero Addr when the network has no route for it.
	gateways []netip.Addr
	// servers maps a network and a private IP to the server that has it,
	// read on demand (private IPs of servers rarely change).
	servers map[int64]map[netip.Addr]int64
}

var _ Handler = (*RouteIPs)(nil)

// NewRouteIPs returns the route VIP handler for cfg.
func NewRouteIPs(cfg PrivateVIPsConfig, cloud RouteCloud) (*RouteIPs, error) {
	if err := cfg.validate(KindRouteIP); err != nil {
		return nil, err
	}
	if cloud == nil {
		return nil, fmt.Errorf("new %s handler: cloud is required", KindRouteIP)
	}
	cfg.VIPs = slices.Clone(cfg.VIPs)
	return &RouteIPs{cloud: cloud, privateVIPs: privateVIPs{kind: KindRouteIP, cfg: cfg}, servers: map[int64]map[netip.Addr]int64{}}, nil
}

// Holder reads the VIPs' networks and returns who holds the VIPs (see
// Handler). A VIP inside one of its network's subnets is an error: the API
// refuses such a route, and the metadata only lets the configuration check
// the subnet this server is attached to.
func (h *RouteIPs) Holder(ctx context.Context) (int64, error) {
	nets := map[int64]cloudapi.Network{}
	var errs []error
	for _, v := range h.cfg.VIPs {
		if _, ok := nets[v.NetworkID]; ok {
			continue
		}
		n, err := h.cloud.GetNetwork(ctx, v.NetworkID)
		if err != nil {
			errs = append(errs, fmt.Errorf("get network %d for route vips: %w", v.NetworkID, err))
			continue
		}
		nets[v.NetworkID] = n
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	gateways := make([]netip.Addr, len(h.cfg.VIPs))
	for i, v := range h.cfg.VIPs {
		n := nets[v.NetworkID]
		for _, s := range n.Subnets {
			if s.IPRange.Contains(v.IP) {
				errs = append(errs, fmt.Errorf("route vip %s lies inside subnet %s of network %d: a route VIP must lie outside every subnet", v.IP, s.IPRange, n.ID))
			}
		}
		dst := netip.PrefixFrom(v.IP, 32)
		for _, r := range n.Routes {
			if r.Destination == dst {
				gateways[i] = r.Gateway
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	holders, err := h.gatewayHolders(ctx, gateways)
	if err != nil {
		return 0, err
	}
	h.mu.Lock()
	h.gateways = gateways
	h.holders = holders
	h.readAt = time.Now()
	holder := h.holder()
	h.notify()
	h.reassert(ctx, holder)
	h.mu.Unlock()
	return holder, nil
}

// gatewayHolders maps each VIP's gateway to a server: this server for its own
// private IP, else from the servers' private IPs (listed again only when a
// gateway is not known yet), 0 for no route or a gateway no server has.
func (h *RouteIPs) gatewayHolders(ctx context.Context, gateways []netip.Addr) ([]int64, error) {
	lookup := func() ([]int64, bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		out := make([]int64, len(gateways))
		complete := true
		for i, gw := range gateways {
			v := h.cfg.VIPs[i]
			switch id, ok := h.servers[v.NetworkID][gw]; {
			case !gw.IsValid():
			case gw == v.SelfIP:
				out[i] = h.cfg.Self
			case ok:
				out[i] = id
			default:
				complete = false
			}
		}
		return out, complete
	}
	if out, ok := lookup(); ok {
		return out, nil
	}
	servers, err := h.cloud.ListServers(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list servers for route vip gateways: %w", err)
	}
	byIP := map[int64]map[netip.Addr]int64{}
	for _, s := range servers {
		for _, pn := range s.PrivateNets {
			if byIP[pn.NetworkID] == nil {
				byIP[pn.NetworkID] = map[netip.Addr]int64{}
			}
			byIP[pn.NetworkID][pn.IP] = s.ID
		}
	}
	h.mu.Lock()
	h.servers = byIP
	h.mu.Unlock()
	out, _ := lookup() // a gateway no server has: nobody holds that VIP
	return out, nil
}

// Acquire points the route of every VIP not held here to this server's
// private IP: delete_route of the old route (a route already gone counts as
// deleted), then add_route, each action awaited (see Handler and the type's
// comment for the window in between).
func (h *RouteIPs) Acquire(ctx context.Context) error {
	type move struct {
		vip PrivateVIP
		old netip.Addr
	}
	var moves []move
	h.mu.Lock()
	for i, v := range h.cfg.VIPs {
		if i < len(h.holders) && h.holders[i] == h.cfg.Self {
			continue
		}
		var old netip.Addr
		if i < len(h.gateways) {
			old = h.gateways[i]
		}
		moves = append(moves, move{vip: v, old: old})
	}
	h.mu.Unlock()

	var (
		errs       []error
		callFailed bool
	)
	fail := func(failed bool, err error) {
		errs = append(errs, err)
		if !failed {
			callFailed = true
		}
	}
	for _, m := range moves {
		dst := netip.PrefixFrom(m.vip.IP, 32)
		if m.old.IsValid() && m.old != m.vip.SelfIP {
			r := cloudapi.Route{Destination: dst, Gateway: m.old}
			a, err := h.cloud.DeleteRoute(ctx, m.vip.NetworkID, r)
			switch {
			case cloudapi.IsError(err, cloudapi.CodeNotFound):
				// Someone deleted it already: what we wanted.
			case err != nil:
				fail(false, fmt.Errorf("delete route %s via %s in network %d: %w", dst, m.old, m.vip.NetworkID, err))
				continue
			default:
				if failed, err := waitAction(ctx, h.cloud, h.cfg.ActionTimeout, a); err != nil {
					fail(failed, fmt.Errorf("delete route %s via %s in network %d: %w", dst, m.old, m.vip.NetworkID, err))
					continue
				}
			}
		}
		r := cloudapi.Route{Destination: dst, Gateway: m.vip.SelfIP}
		a, err := h.cloud.AddRoute(ctx, m.vip.NetworkID, r)
		if err != nil {
			// invalid_input here is usually another member's route
			// that was added in between; Holder tells.
			fail(false, fmt.Errorf("add route %s via %s in network %d: %w", dst, m.vip.SelfIP, m.vip.NetworkID, err))
			continue
		}
		if failed, err := waitAction(ctx, h.cloud, h.cfg.ActionTimeout, a); err != nil {
			fail(failed, fmt.Errorf("add route %s via %s in network %d: %w", dst, m.vip.SelfIP, m.vip.NetworkID, err))
		}
	}
	return moveErr(errs, callFailed)
}
