package simcloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// netRouteProto marks the routes a private network's router has for the
// network's API routes (route VIPs), apart from the /32s of servers'
// private and alias IPs (routeProto).
const netRouteProto = 0xad

// mirrorNetworkLocked adds the network to the connected simulator, if any,
// with its range, its one subnet (gateway included) and its routes.
func (c *Cloud) mirrorNetworkLocked(n *Network) {
	if c.sim == nil {
		return
	}
	c.sim.AddNetwork(cloudapitest.Network{
		ID:      n.id,
		Name:    n.name,
		IPRange: n.network,
		Subnets: []cloudapitest.Subnet{{IPRange: n.subnet, Gateway: n.gateway}},
		Routes:  slices.Clone(n.routes),
	})
}

// OnAliasIPs has the signature of the API simulator's alias hook
// (cloudapitest.OnAliasIPs): the network's router routes the server's new
// alias IPs to it and stops routing the ones it lost, at once; the
// metadata service shows the change after the metadata lag. Errors are
// logged, since the hook cannot return one.
func (c *Cloud) OnAliasIPs(serverID, networkID int64, ips []netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, n := c.serverByIDLocked(serverID), c.networkByIDLocked(networkID)
	if s == nil || n == nil {
		c.log.Error("route alias ips: no such server or network", "server_id", serverID, "network_id", networkID)
		return
	}
	if err := c.setAliasesLocked(s, n, ips); err != nil {
		c.log.Error("route alias ips", "server", s.name, "network", n.name, "err", err)
		return
	}
	c.log.Info("alias ips routed", "server", s.name, "network", n.name, "alias_ips", ips)
}

// OnRoutes has the signature of the API simulator's route hook
// (cloudapitest.OnRoutes): the network's router follows the API's routes.
func (c *Cloud) OnRoutes(networkID int64, routes []cloudapitest.Route) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.networkByIDLocked(networkID)
	if n == nil {
		c.log.Error("route network routes: no such network", "network_id", networkID)
		return
	}
	n.routes = slices.Clone(routes)
	if err := c.syncNetworkRoutesLocked(n); err != nil {
		c.log.Error("route network routes", "network", n.name, "err", err)
		return
	}
	c.log.Info("network routes routed", "network", n.name, "routes", len(routes))
}

func (c *Cloud) networkByIDLocked(id int64) *Network {
	for _, n := range c.networks {
		if n.id == id {
			return n
		}
	}
	return nil
}

// syncNetworkRoutesLocked makes the router's API routes match n.routes:
// each destination goes to the server whose private IP is the route's
// gateway, on-link through that server's veth, so the router resolves the
// gateway's MAC and the packet arrives still addressed to the VIP, as on
// Hetzner Cloud. A route whose gateway is no running server's private IP
// has no route in the router: its packets are unreachable.
func (c *Cloud) syncNetworkRoutesLocked(n *Network) error {
	h := n.router.nl
	want := map[netip.Prefix]*netlink.Route{}
	for _, r := range n.routes {
		for _, s := range c.servers {
			a := s.attachment(n)
			if a == nil || a.ip != r.Gateway || s.crashed {
				continue
			}
			l, err := h.LinkByName(s.peer())
			if err != nil {
				return fmt.Errorf("find link %s in %s: %w", s.peer(), n.router.name, err)
			}
			want[r.Destination] = &netlink.Route{
				LinkIndex: l.Attrs().Index,
				Dst:       prefixToIPNet(r.Destination),
				Gw:        net.IP(r.Gateway.AsSlice()),
				Flags:     int(netlink.FLAG_ONLINK),
				Protocol:  netRouteProto,
			}
		}
	}
	have, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: netRouteProto}, netlink.RT_FILTER_PROTOCOL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list routes in %s: %w", n.router.name, err)
	}
	var errs []error
	for _, r := range have {
		dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Dst != nil {
			ones, _ := r.Dst.Mask.Size()
			a, _ := netip.AddrFromSlice(r.Dst.IP)
			dst = netip.PrefixFrom(a.Unmap(), ones)
		}
		if w, ok := want[dst]; ok && w.LinkIndex == r.LinkIndex && w.Gw.Equal(r.Gw) {
			delete(want, dst) // already there
			continue
		}
		r := r
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s in %s: %w", dst, n.router.name, err))
		}
	}
	for dst, r := range want {
		if err := h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("replace route %s via %s in %s: %w", dst, r.Gw, n.router.name, err))
		}
	}
	return errors.Join(errs...)
}

// deleteRouteDev deletes the route to dst through link; a route to dst
// through another link (another server has the address now) stays, and
// already gone counts as success.
func deleteRouteDev(h *netlink.Handle, dst netip.Prefix, link string) error {
	l, err := h.LinkByName(link)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // the veth is gone, and its routes with it
		}
		return fmt.Errorf("find link %s: %w", link, err)
	}
	err = h.RouteDel(&netlink.Route{Dst: prefixToIPNet(dst), LinkIndex: l.Attrs().Index})
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete route %s dev %s: %w", dst, link, err)
	}
	return nil
}

// AliasHolder returns the name of the server the network's router sends
// ip to as an alias IP, or "" when no server's attachment holds it.
func (c *Cloud) AliasHolder(network string, ip netip.Addr) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.networkLocked(network)
	if n == nil {
		return ""
	}
	for _, s := range c.servers {
		if a := s.attachment(n); a != nil && slices.Contains(a.aliases, ip) {
			return s.name
		}
	}
	return ""
}

// RouteHolder returns the name of the server whose private IP is the
// gateway of the network's route for dst, or "".
func (c *Cloud) RouteHolder(network string, dst netip.Prefix) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.networkLocked(network)
	if n == nil {
		return ""
	}
	for _, r := range n.routes {
		if r.Destination != dst {
			continue
		}
		for _, s := range c.servers {
			if a := s.attachment(n); a != nil && a.ip == r.Gateway {
				return s.name
			}
		}
	}
	return ""
}

// SetNetworkRoutes replaces the network's routes directly, as if earlier
// add_route actions had succeeded (for test set-up). With an API simulator
// connected, its routes change too.
func (c *Cloud) SetNetworkRoutes(network string, routes []cloudapitest.Route) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.networkLocked(network)
	if n == nil {
		return fmt.Errorf("set routes of network %s: no such network", network)
	}
	n.routes = slices.Clone(routes)
	if c.sim != nil {
		c.sim.SetRoutes(n.id, routes)
	}
	return c.syncNetworkRoutesLocked(n)
}

// AddPrivateClient adds a server that is only a client of the private
// network: it is attached to the network with its private NIC configured
// as an image would (ConfigurePrivate) and has no labels, so no failover
// group sees it. Probes of a private VIP run from it (Server.HTTPClient,
// StartProbe). Its name is pclient<N>.
func (c *Cloud) AddPrivateClient(network string) (*Server, error) {
	c.mu.Lock()
	name := "pclient" + strconv.Itoa(len(c.servers)+1)
	c.mu.Unlock()
	return c.AddServer(ServerSpec{Name: name, Networks: []string{network}, ConfigurePrivate: true})
}

// StartProbe probes url from inside the server's namespace (see
// StartProbe), for example a private VIP from a private client.
func (s *Server) StartProbe(ctx context.Context, url string, interval, timeout time.Duration) *Probe {
	return StartProbe(ctx, s.HTTPClient(), url, interval, timeout)
}

// SourceRecorder is an HTTP server in the client namespace that records
// the source address of every request, to check which address a server's
// outgoing connections leave from (egress through a floating IP). It
// answers each request with the source address.
type SourceRecorder struct {
	addr netip.AddrPort

	mu      sync.Mutex
	sources []netip.Addr
	changed chan struct{} // closed and replaced on every request
}

// StartSourceRecorder starts a SourceRecorder on ClientAddr:port. The Cloud
// stops it on Close.
func (c *Cloud) StartSourceRecorder(port uint16) (*SourceRecorder, error) {
	r := &SourceRecorder{addr: netip.AddrPortFrom(ClientAddr, port), changed: make(chan struct{})}
	ln, err := c.client.listen(r.addr.String())
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	c.mu.Lock()
	c.httpSrvs = append(c.httpSrvs, srv)
	c.mu.Unlock()
	// The goroutine exits when Close shuts the server down.
	go func() { _ = srv.Serve(ln) }()
	return r, nil
}

// URL is the recorder's address as an http URL, to fetch from a server.
func (r *SourceRecorder) URL() string { return "http://" + r.addr.String() + "/" }

// ServeHTTP records the request's source address and answers with it.
func (r *SourceRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	src := ap.Addr().Unmap()
	r.mu.Lock()
	r.sources = append(r.sources, src)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	_, _ = w.Write([]byte(src.String() + "\n"))
}

// Sources returns the recorded source addresses in arrival order.
func (r *SourceRecorder) Sources() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sources)
}

// WaitSources blocks until at least n requests were recorded or ctx ends.
func (r *SourceRecorder) WaitSources(ctx context.Context, n int) ([]netip.Addr, error) {
	for {
		r.mu.Lock()
		got, ch := slices.Clone(r.sources), r.changed
		r.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("wait for %d requests at %s (have %d): %w", n, r.addr, len(got), ctx.Err())
		}
	}
}
