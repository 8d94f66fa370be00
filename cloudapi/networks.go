package cloudapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/hc-agent/hc-agent/internal/ipconv"
	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Error codes of the private-network calls.
const (
	// CodeIPNotAvailable answers change_alias_ips with an address that
	// another server's attachment to the network still holds.
	CodeIPNotAvailable = "ip_not_available"
	// CodeServerNotAttachedToNetwork answers change_alias_ips for a
	// network the server is not attached to.
	CodeServerNotAttachedToNetwork = "server_not_attached_to_network"
)

// Network is a private network as the agent sees it.
type Network struct {
	ID      int64
	Name    string
	IPRange netip.Prefix
	Subnets []Subnet
	Routes  []Route
	// Servers are the IDs of the attached servers.
	Servers []int64
	Labels  map[string]string
}

// Subnet is a subnet of a Network.
type Subnet struct {
	Type        string // "cloud", "server" or "vswitch"
	IPRange     netip.Prefix
	NetworkZone string
	Gateway     netip.Addr
}

// Route is a network route: the cloud sends traffic for Destination to
// Gateway, a server's private IP.
type Route struct {
	Destination netip.Prefix
	Gateway     netip.Addr
}

// GetNetwork returns a network by ID; a missing one is an *Error with code
// not_found. Urgent when ctx is marked with WithUrgent (a route VIP's
// verification after a move is).
func (c *Client) GetNetwork(ctx context.Context, id int64) (Network, error) {
	op := fmt.Sprintf("get network %d", id)
	var out Network
	err := c.call(ctx, op, func(ctx context.Context) error {
		n, _, err := c.hc.Network.GetByID(ctx, id)
		if err != nil {
			return err
		}
		if n == nil {
			return &Error{Op: op, Code: CodeNotFound, Message: "network not found", Status: http.StatusNotFound}
		}
		out = networkFrom(n)
		return nil
	})
	return out, err
}

// ListNetworks returns every network (all pages) that matches the label
// selector; an empty selector returns all. Non-urgent unless ctx is marked
// with WithUrgent.
func (c *Client) ListNetworks(ctx context.Context, selector string) ([]Network, error) {
	var out []Network
	err := c.call(ctx, "list networks", func(ctx context.Context) error {
		nets, err := c.hc.Network.AllWithOpts(ctx, hcloud.NetworkListOpts{
			ListOpts: hcloud.ListOpts{LabelSelector: selector, PerPage: 50},
		})
		if err != nil {
			return err
		}
		out = make([]Network, 0, len(nets))
		for _, n := range nets {
			out = append(out, networkFrom(n))
		}
		return nil
	})
	return out, err
}

// ChangeAliasIPs starts replacing the alias IPs of a server's attachment to
// a network with ips. The API replaces the whole list: callers read the
// current list (GetServer) and send it with their change, or they drop
// every other alias. An address another server still holds is refused
// with CodeIPNotAvailable. The change is done when the returned action
// succeeds (see WaitAction). Always urgent. A retry after a lost response
// sends the same list again, which is harmless.
func (c *Client) ChangeAliasIPs(ctx context.Context, serverID, networkID int64, ips []netip.Addr) (Action, error) {
	aliases := make([]net.IP, 0, len(ips))
	for _, ip := range ips {
		aliases = append(aliases, net.IP(ip.AsSlice()))
	}
	return c.startAction(ctx, fmt.Sprintf("change alias ips of server %d in network %d", serverID, networkID), func(ctx context.Context) (*hcloud.Action, error) {
		a, _, err := c.hc.Server.ChangeAliasIPs(ctx, &hcloud.Server{ID: serverID}, hcloud.ServerChangeAliasIPsOpts{
			Network:  &hcloud.Network{ID: networkID},
			AliasIPs: aliases,
		})
		return a, err
	})
}

// AddRoute starts adding a route to a network. The API validates it (the
// destination RFC 1918 or 0.0.0.0/0 and outside every subnet, the gateway
// neither the network's first address nor 172.31.1.1) and answers
// invalid_input otherwise, also for a destination that already has a route:
// a retry after a lost response can therefore fail although the route was
// added, and callers verify with GetNetwork. Always urgent.
func (c *Client) AddRoute(ctx context.Context, networkID int64, r Route) (Action, error) {
	return c.routeAction(ctx, "add", networkID, r, func(ctx context.Context, n *hcloud.Network, hr hcloud.NetworkRoute) (*hcloud.Action, error) {
		a, _, err := c.hc.Network.AddRoute(ctx, n, hcloud.NetworkAddRouteOpts{Route: hr})
		return a, err
	})
}

// DeleteRoute starts deleting a route of a network. A route that is not
// there is an *Error with code not_found. There is no update verb: moving
// a route is DeleteRoute, then AddRoute. Always urgent.
func (c *Client) DeleteRoute(ctx context.Context, networkID int64, r Route) (Action, error) {
	return c.routeAction(ctx, "delete", networkID, r, func(ctx context.Context, n *hcloud.Network, hr hcloud.NetworkRoute) (*hcloud.Action, error) {
		a, _, err := c.hc.Network.DeleteRoute(ctx, n, hcloud.NetworkDeleteRouteOpts{Route: hr})
		return a, err
	})
}

func (c *Client) routeAction(ctx context.Context, verb string, networkID int64, r Route,
	fn func(context.Context, *hcloud.Network, hcloud.NetworkRoute) (*hcloud.Action, error)) (Action, error) {
	hr := hcloud.NetworkRoute{Destination: ipconv.IPNet(r.Destination), Gateway: net.IP(r.Gateway.AsSlice())}
	return c.startAction(ctx, fmt.Sprintf("%s route %s via %s in network %d", verb, r.Destination, r.Gateway, networkID), func(ctx context.Context) (*hcloud.Action, error) {
		return fn(ctx, &hcloud.Network{ID: networkID}, hr)
	})
}

func networkFrom(n *hcloud.Network) Network {
	out := Network{
		ID:      n.ID,
		Name:    n.Name,
		IPRange: prefixFrom(n.IPRange),
		Labels:  n.Labels,
	}
	for _, s := range n.Subnets {
		out.Subnets = append(out.Subnets, Subnet{
			Type:        string(s.Type),
			IPRange:     prefixFrom(s.IPRange),
			NetworkZone: string(s.NetworkZone),
			Gateway:     addrFrom(s.Gateway),
		})
	}
	for _, r := range n.Routes {
		out.Routes = append(out.Routes, Route{Destination: prefixFrom(r.Destination), Gateway: addrFrom(r.Gateway)})
	}
	for _, s := range n.Servers {
		if s != nil {
			out.Servers = append(out.Servers, s.ID)
		}
	}
	return out
}
