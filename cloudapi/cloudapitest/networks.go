package cloudapitest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// Network describes a simulated private network. ID 0 means "allocate one".
type Network struct {
	ID      int64
	Name    string
	IPRange netip.Prefix // e.g. 10.0.0.0/16
	Subnets []Subnet
	Routes  []Route
	Labels  map[string]string
}

// Subnet is a subnet of a Network.
type Subnet struct {
	Type        string       // default "cloud"
	IPRange     netip.Prefix // e.g. 10.0.0.0/24
	NetworkZone string       // default "eu-central"
	// Gateway defaults to the network's first address (10.0.0.1 in
	// 10.0.0.0/16), as on Hetzner Cloud, where every subnet of a network
	// shares it.
	Gateway netip.Addr
}

// Route is a route of a Network: traffic for Destination goes to Gateway,
// a server's private IP.
type Route struct {
	Destination netip.Prefix
	Gateway     netip.Addr
}

// AliasIPsFunc is told a server's alias IPs in a network after a
// change_alias_ips action succeeded (that is when the cloud routes them).
type AliasIPsFunc func(serverID, networkID int64, aliasIPs []netip.Addr)

// RoutesFunc is told a network's routes after an add_route or delete_route
// action succeeded.
type RoutesFunc func(networkID int64, routes []Route)

type networkState struct {
	Network
	created time.Time
	running int64 // ID of the running action, 0 if none
}

// aliasChange is the alias list a running change_alias_ips action sets.
type aliasChange struct {
	serverID, networkID int64
	ips                 []netip.Addr
}

// Defaults of the simulated networks.
const (
	defaultSubnetType  = "cloud"
	defaultNetworkZone = "eu-central"
)

// publicGateway is the public network's gateway, which the API refuses as
// a route's gateway.
var publicGateway = netip.MustParseAddr("172.31.1.1")

// rfc1918 are the private ranges a route's destination must lie in (or be
// 0.0.0.0/0).
var rfc1918 = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

var defaultRoute = netip.MustParsePrefix("0.0.0.0/0")

// firstAddr is a network's first usable address, the gateway of all its
// subnets.
func firstAddr(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// AddNetwork adds a private network and returns its ID. Servers are
// attached to it through Server.PrivateNets.
func (s *Sim) AddNetwork(n Network) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.ID == 0 {
		n.ID = s.id()
	}
	if n.Name == "" {
		n.Name = fmt.Sprintf("network-%d", n.ID)
	}
	n.IPRange = n.IPRange.Masked()
	n.Subnets = slices.Clone(n.Subnets)
	for i := range n.Subnets {
		sn := &n.Subnets[i]
		sn.IPRange = sn.IPRange.Masked()
		if sn.Type == "" {
			sn.Type = defaultSubnetType
		}
		if sn.NetworkZone == "" {
			sn.NetworkZone = defaultNetworkZone
		}
		if !sn.Gateway.IsValid() {
			sn.Gateway = firstAddr(n.IPRange)
		}
	}
	n.Routes = slices.Clone(n.Routes)
	n.Labels = cloneLabels(n.Labels)
	s.networks[n.ID] = &networkState{Network: n, created: s.now().UTC().Truncate(time.Second)}
	return n.ID
}

// Network returns a snapshot of a network.
func (s *Sim) Network(id int64) (Network, bool) {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.networks[id]
	if !ok {
		return Network{}, false
	}
	out := n.Network
	out.Subnets = slices.Clone(out.Subnets)
	out.Routes = slices.Clone(out.Routes)
	out.Labels = cloneLabels(out.Labels)
	return out, true
}

// Server returns a snapshot of a server, with its private networks' alias
// IPs as the API reports them now.
func (s *Sim) Server(id int64) (Server, bool) {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.servers[id]
	if !ok {
		return Server{}, false
	}
	out := *srv
	out.Labels = cloneLabels(out.Labels)
	out.PrivateNets = slices.Clone(out.PrivateNets)
	for i := range out.PrivateNets {
		out.PrivateNets[i].AliasIPs = slices.Clone(out.PrivateNets[i].AliasIPs)
	}
	return out, true
}

// AliasIPs returns a server's alias IPs in a network as the API reports
// them now (nil when the server is not attached).
func (s *Sim) AliasIPs(serverID, networkID int64) []netip.Addr {
	srv, _ := s.Server(serverID)
	for _, pn := range srv.PrivateNets {
		if pn.NetworkID == networkID {
			return pn.AliasIPs
		}
	}
	return nil
}

// AllowSharedAliasIPs makes change_alias_ips accept an alias IP that
// another server's attachment to the same network holds (the default
// refuses it with ip_not_available, as the API does).
func (s *Sim) AllowSharedAliasIPs(allow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sharedAlias = allow
}

// OnAliasIPs registers a hook called, outside the simulator's lock, when a
// change_alias_ips action succeeds. Requests wait until the hooks returned,
// as for OnAssign. A hook must not call the Sim.
func (s *Sim) OnAliasIPs(fn AliasIPsFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAliasIPs = append(s.onAliasIPs, fn)
}

// OnRoutes registers a hook called, outside the simulator's lock, with a
// network's routes when an add_route or delete_route action succeeds.
// Requests wait until the hooks returned. A hook must not call the Sim.
func (s *Sim) OnRoutes(fn RoutesFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRoutes = append(s.onRoutes, fn)
}

func (s *Sim) networkJSONLocked(n *networkState) schema.Network {
	out := schema.Network{
		ID:            n.ID,
		Name:          n.Name,
		Created:       n.created,
		IPRange:       n.IPRange.String(),
		Subnets:       []schema.NetworkSubnet{},
		Routes:        []schema.NetworkRoute{},
		Servers:       []int64{},
		LoadBalancers: []int64{},
		Labels:        cloneLabels(n.Labels),
	}
	for _, sn := range n.Subnets {
		out.Subnets = append(out.Subnets, schema.NetworkSubnet{
			Type: sn.Type, IPRange: sn.IPRange.String(), NetworkZone: sn.NetworkZone, Gateway: addrString(sn.Gateway),
		})
	}
	for _, r := range n.Routes {
		out.Routes = append(out.Routes, schema.NetworkRoute{Destination: r.Destination.String(), Gateway: r.Gateway.String()})
	}
	for _, srv := range s.servers {
		for _, pn := range srv.PrivateNets {
			if pn.NetworkID == n.ID {
				out.Servers = append(out.Servers, srv.ID)
			}
		}
	}
	slices.Sort(out.Servers)
	return out
}

func (s *Sim) listNetworks(w http.ResponseWriter, r *http.Request) {
	sel, ok := s.selector(w, r)
	if !ok {
		return
	}
	name := r.URL.Query().Get("name")
	listJSON(s, w, r, "networks", s.networks,
		func(n *networkState) bool { return (name == "" || n.Name == name) && sel.Matches(n.Labels) },
		map[string]func(a, b *networkState) int{
			"id":      func(a, b *networkState) int { return cmp.Compare(a.ID, b.ID) },
			"name":    func(a, b *networkState) int { return cmp.Compare(a.Name, b.Name) },
			"created": func(a, b *networkState) int { return a.created.Compare(b.created) },
		}, s.networkJSONLocked)
}

func (s *Sim) getNetwork(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n, ok := lookupLocked(s, w, r, s.networks, "network")
	if !ok {
		s.mu.Unlock()
		return
	}
	body := schema.NetworkGetResponse{Network: s.networkJSONLocked(n)}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, body)
}

// startLockedAction starts an action, finishing it at once without an
// action delay, and answers 201 with it after the hooks returned. The
// caller holds hookMu and mu; startLockedAction releases mu.
func (s *Sim) startLockedAction(w http.ResponseWriter, a *actionState) {
	var calls []func()
	if a.delay <= 0 {
		calls = s.finishLocked(a)
	}
	body := schema.ActionGetResponse{Action: s.actionJSONLocked(a)}
	s.mu.Unlock()
	for _, c := range calls {
		c()
	}
	s.writeJSON(w, http.StatusCreated, body)
}

// changeAliasIPs replaces the alias list of one network attachment, as
// POST /servers/{id}/actions/change_alias_ips does: the request carries the
// whole new list, so a client that sends only [vip] drops every other
// alias. The list takes effect when the action succeeds; an address
// another server's attachment holds (or is about to get from a running
// action) is refused with ip_not_available unless AllowSharedAliasIPs.
func (s *Sim) changeAliasIPs(w http.ResponseWriter, r *http.Request) {
	var req schema.ServerActionChangeAliasIPsRequest
	if err := decode(r, &req); err != nil {
		s.jsonError(w, err)
		return
	}
	if req.AliasIPs == nil {
		s.invalidInput(w, "alias_ips", "is required")
		return
	}
	ips := make([]netip.Addr, 0, len(req.AliasIPs))
	for _, v := range req.AliasIPs {
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is4() {
			s.invalidInput(w, "alias_ips", fmt.Sprintf("%q is not an IPv4 address", v))
			return
		}
		if slices.Contains(ips, ip) {
			s.invalidInput(w, "alias_ips", fmt.Sprintf("%s is listed twice", ip))
			return
		}
		ips = append(ips, ip)
	}
	id, ok := s.pathID(w, r, "id")
	if !ok {
		return
	}
	s.hookMu.Lock() // until the hooks below returned
	defer s.hookMu.Unlock()
	s.mu.Lock()
	srv, ok := s.servers[id]
	if !ok {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("server with ID %d not found", id), nil)
		return
	}
	att := slices.IndexFunc(srv.PrivateNets, func(pn PrivateNet) bool { return pn.NetworkID == req.Network })
	if att < 0 {
		s.mu.Unlock()
		s.writeError(w, http.StatusUnprocessableEntity, "server_not_attached_to_network", fmt.Sprintf("server %d is not attached to network %d", id, req.Network), nil)
		return
	}
	if running := s.serverBusy[id]; running != 0 {
		s.mu.Unlock()
		s.writeError(w, http.StatusLocked, "locked", fmt.Sprintf("server %d is locked: action %d is running", id, running), nil)
		return
	}
	if code, msg := s.checkAliasesLocked(srv, srv.PrivateNets[att], ips); code != "" {
		s.mu.Unlock()
		if code == "invalid_input" {
			s.invalidInput(w, "alias_ips", msg)
			return
		}
		s.writeError(w, http.StatusConflict, code, msg, nil)
		return
	}
	resources := []schema.ActionResourceReference{{ID: id, Type: "server"}, {ID: req.Network, Type: "network"}}
	a := s.newActionLocked("change_alias_ips", nil, 0, resources, s.actionDelay, true)
	a.alias = &aliasChange{serverID: id, networkID: req.Network, ips: ips}
	s.serverBusy[id] = a.ID
	a.release = func() { delete(s.serverBusy, id) }
	a.apply = func() []func() {
		srv, ok := s.servers[id]
		if !ok {
			return nil
		}
		i := slices.IndexFunc(srv.PrivateNets, func(pn PrivateNet) bool { return pn.NetworkID == req.Network })
		if i < 0 {
			return nil
		}
		srv.PrivateNets[i].AliasIPs = slices.Clone(ips)
		s.log.Debug("alias ips changed", "server", id, "network", req.Network, "alias_ips", ips)
		var calls []func()
		for _, fn := range s.onAliasIPs {
			calls = append(calls, func() { fn(id, req.Network, slices.Clone(ips)) })
		}
		return calls
	}
	s.startLockedAction(w, a)
}

// checkAliasesLocked validates a new alias list of srv's attachment pn and
// returns an error code and message, or "" when the list is acceptable.
func (s *Sim) checkAliasesLocked(srv *Server, pn PrivateNet, ips []netip.Addr) (code, msg string) {
	if n, ok := s.networks[pn.NetworkID]; ok {
		for _, ip := range ips {
			inSubnet := slices.ContainsFunc(n.Subnets, func(sn Subnet) bool { return sn.IPRange.Contains(ip) })
			if !n.IPRange.Contains(ip) || !inSubnet {
				return "invalid_input", fmt.Sprintf("%s is not inside a subnet of network %d", ip, n.ID)
			}
			if ip == firstAddr(n.IPRange) {
				return "invalid_input", fmt.Sprintf("%s is the network's gateway", ip)
			}
		}
	}
	for _, ip := range ips {
		if ip == pn.IP {
			return "invalid_input", fmt.Sprintf("%s is the server's own IP in the network", ip)
		}
	}
	for _, other := range s.servers {
		if other.ID == srv.ID {
			continue
		}
		for _, opn := range other.PrivateNets {
			if opn.NetworkID != pn.NetworkID {
				continue
			}
			for _, ip := range ips {
				if ip == opn.IP {
					return "ip_not_available", fmt.Sprintf("ip %s is used by server %d", ip, other.ID)
				}
				if !s.sharedAlias && slices.Contains(opn.AliasIPs, ip) {
					return "ip_not_available", fmt.Sprintf("ip %s is an alias ip of server %d", ip, other.ID)
				}
			}
		}
	}
	if s.sharedAlias {
		return "", ""
	}
	for _, a := range s.actions {
		if a.settled || a.alias == nil || a.alias.serverID == srv.ID || a.alias.networkID != pn.NetworkID {
			continue
		}
		for _, ip := range ips {
			if slices.Contains(a.alias.ips, ip) {
				return "ip_not_available", fmt.Sprintf("ip %s is being assigned to server %d", ip, a.alias.serverID)
			}
		}
	}
	return "", ""
}

func (s *Sim) addRoute(w http.ResponseWriter, r *http.Request)    { s.routeAction(w, r, true) }
func (s *Sim) deleteRoute(w http.ResponseWriter, r *http.Request) { s.routeAction(w, r, false) }

// routeAction serves add_route and delete_route. The API has no verb that
// changes a route's gateway: a move is delete_route, then add_route.
func (s *Sim) routeAction(w http.ResponseWriter, r *http.Request, add bool) {
	var req schema.NetworkActionAddRouteRequest
	if err := decode(r, &req); err != nil {
		s.jsonError(w, err)
		return
	}
	dst, err := netip.ParsePrefix(req.Destination)
	if err != nil || !dst.Addr().Is4() || dst != dst.Masked() {
		s.invalidInput(w, "destination", fmt.Sprintf("%q is not an IPv4 network", req.Destination))
		return
	}
	gw, err := netip.ParseAddr(req.Gateway)
	if err != nil || !gw.Is4() {
		s.invalidInput(w, "gateway", fmt.Sprintf("%q is not an IPv4 address", req.Gateway))
		return
	}
	route := Route{Destination: dst, Gateway: gw}
	s.hookMu.Lock() // until the hooks below returned
	defer s.hookMu.Unlock()
	s.mu.Lock()
	n, ok := lookupLocked(s, w, r, s.networks, "network")
	if !ok {
		s.mu.Unlock()
		return
	}
	if n.running != 0 {
		s.mu.Unlock()
		s.writeError(w, http.StatusLocked, "locked", fmt.Sprintf("network %d is locked: action %d is running", n.ID, n.running), nil)
		return
	}
	command := "delete_route"
	if add {
		command = "add_route"
		if field, msg := validateRoute(n.Network, route); field != "" {
			s.mu.Unlock()
			s.invalidInput(w, field, msg)
			return
		}
	} else if !slices.Contains(n.Routes, route) {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("network %d has no route %s via %s", n.ID, dst, gw), nil)
		return
	}
	resources := []schema.ActionResourceReference{{ID: n.ID, Type: "network"}}
	a := s.newActionLocked(command, nil, 0, resources, s.actionDelay, true)
	n.running = a.ID
	id := n.ID
	a.release = func() {
		if n, ok := s.networks[id]; ok && n.running == a.ID {
			n.running = 0
		}
	}
	a.apply = func() []func() {
		n, ok := s.networks[id]
		if !ok {
			return nil
		}
		if add {
			n.Routes = append(n.Routes, route)
		} else {
			n.Routes = slices.DeleteFunc(n.Routes, func(x Route) bool { return x == route })
		}
		s.log.Debug("network routes changed", "network", id, "command", command, "destination", dst, "gateway", gw)
		routes := slices.Clone(n.Routes)
		var calls []func()
		for _, fn := range s.onRoutes {
			calls = append(calls, func() { fn(id, slices.Clone(routes)) })
		}
		return calls
	}
	s.startLockedAction(w, a)
}

// validateRoute applies the platform's rules for a new route and returns
// the offending field and why, or "" when the route is acceptable: the
// destination is RFC 1918 (or 0.0.0.0/0), overlaps no subnet and no other
// route's destination, and does not cover the network's first address; the
// gateway lies in the network and is neither its first address nor
// 172.31.1.1.
func validateRoute(n Network, r Route) (field, msg string) {
	first := firstAddr(n.IPRange)
	if r.Destination != defaultRoute {
		if !slices.ContainsFunc(rfc1918, func(p netip.Prefix) bool {
			return p.Bits() <= r.Destination.Bits() && p.Contains(r.Destination.Addr())
		}) {
			return "destination", fmt.Sprintf("%s is not a private (RFC 1918) network or 0.0.0.0/0", r.Destination)
		}
		for _, sn := range n.Subnets {
			if sn.IPRange.Overlaps(r.Destination) {
				return "destination", fmt.Sprintf("%s overlaps subnet %s", r.Destination, sn.IPRange)
			}
		}
		if r.Destination.Contains(first) {
			return "destination", fmt.Sprintf("%s contains the network's first address %s", r.Destination, first)
		}
	}
	for _, x := range n.Routes {
		if x.Destination.Overlaps(r.Destination) && (x.Destination == r.Destination || r.Destination != defaultRoute && x.Destination != defaultRoute) {
			return "destination", fmt.Sprintf("%s overlaps the destination of route %s via %s", r.Destination, x.Destination, x.Gateway)
		}
	}
	switch {
	case r.Gateway == publicGateway:
		return "gateway", fmt.Sprintf("%s is the public network's gateway", r.Gateway)
	case r.Gateway == first:
		return "gateway", fmt.Sprintf("%s is the network's first address", r.Gateway)
	case !n.IPRange.Contains(r.Gateway):
		return "gateway", fmt.Sprintf("%s is not inside the network %s", r.Gateway, n.IPRange)
	}
	return "", ""
}

// SetAliasIPs sets a server's alias IPs in a network directly, as if an
// earlier change_alias_ips had succeeded, without hooks or checks: for test
// set-up and for a simulated cloud that mirrors its own state.
func (s *Sim) SetAliasIPs(serverID, networkID int64, ips []netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	srv, ok := s.servers[serverID]
	if !ok {
		return
	}
	for i := range srv.PrivateNets {
		if srv.PrivateNets[i].NetworkID == networkID {
			srv.PrivateNets[i].AliasIPs = slices.Clone(ips)
		}
	}
}

// SetRoutes replaces a network's routes directly, without hooks or checks:
// for test set-up and for a simulated cloud that mirrors its own state.
func (s *Sim) SetRoutes(networkID int64, routes []Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.networks[networkID]; ok {
		n.Routes = slices.Clone(routes)
	}
}
