package simcloud

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/metadata"
)

var (
	publicV4Base = netip.MustParseAddr("203.0.113.0")
	fipV4Base    = netip.MustParseAddr("198.51.100.0")
)

// roleRE limits which server names are used verbatim in namespace names.
var roleRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

// NetworkSpec describes a private network.
type NetworkSpec struct {
	// Name is the network's name (network_name in metadata). Required.
	Name string
	// ID is the network ID; 0 picks 100+n for the n-th network.
	ID int64
	// Network is the whole network, e.g. 10.0.0.0/16. Required, IPv4.
	Network netip.Prefix
	// Subnet is the subnet servers get addresses from, e.g. 10.0.0.0/24;
	// the zero value uses Network. The gateway is its first host (.1).
	Subnet netip.Prefix
}

// Network is a private network: a router namespace holding the gateway
// address, with one veth per attached server.
type Network struct {
	id      int64
	name    string
	network netip.Prefix
	subnet  netip.Prefix
	gateway netip.Addr
	router  *namespace
	// partitions holds the server pairs whose traffic the router drops.
	partitions [][2]*Server
	// routes are the network's routes as the API reports them; the router
	// follows them (private_linux.go).
	routes []cloudapitest.Route
}

// ID returns the network ID.
func (n *Network) ID() int64 { return n.id }

// Name returns the network name.
func (n *Network) Name() string { return n.name }

// Prefix returns the whole network (the route servers point at the gateway).
func (n *Network) Prefix() netip.Prefix { return n.network }

// Subnet returns the subnet servers' addresses come from.
func (n *Network) Subnet() netip.Prefix { return n.subnet }

// Gateway returns the gateway address (the subnet's .1).
func (n *Network) Gateway() netip.Addr { return n.gateway }

// RouterNetNS returns the name of the network's router namespace.
func (n *Network) RouterNetNS() string { return n.router.name }

// AddNetwork creates a private network.
func (c *Cloud) AddNetwork(spec NetworkSpec) (*Network, error) {
	if spec.Name == "" || !spec.Network.IsValid() || !spec.Network.Addr().Is4() {
		return nil, fmt.Errorf("add network %q: a name and an IPv4 network are required", spec.Name)
	}
	if !spec.Subnet.IsValid() {
		spec.Subnet = spec.Network
	}
	spec.Network, spec.Subnet = spec.Network.Masked(), spec.Subnet.Masked()
	if !spec.Network.Contains(spec.Subnet.Addr()) || spec.Subnet.Bits() < spec.Network.Bits() || spec.Subnet.Bits() > 29 {
		return nil, fmt.Errorf("add network %q: subnet %s is not a /29 or larger inside %s", spec.Name, spec.Subnet, spec.Network)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("add network %q: cloud is closed", spec.Name)
	}
	for _, n := range c.networks {
		if n.name == spec.Name {
			return nil, fmt.Errorf("add network %q: name exists", spec.Name)
		}
	}
	if spec.ID == 0 {
		spec.ID = int64(100 + len(c.networks) + 1)
	}
	n := &Network{
		id:      spec.ID,
		name:    spec.Name,
		network: spec.Network,
		subnet:  spec.Subnet,
		gateway: spec.Subnet.Addr().Next(),
	}
	r, err := c.newNSLocked("net" + strconv.Itoa(len(c.networks)+1))
	if err != nil {
		return nil, fmt.Errorf("add network %q: %w", spec.Name, err)
	}
	n.router = r
	// The gateway sits on the router's lo: the router answers ARP for it on
	// every server-facing veth, and each server's addresses are /32 routes
	// to that server's veth. Servers therefore reach each other only
	// through the gateway, as on Hetzner Cloud.
	if err := addAddr(r.nl, "lo", netip.PrefixFrom(n.gateway, 32)); err != nil {
		return nil, fmt.Errorf("add network %q: %w", spec.Name, err)
	}
	c.networks = append(c.networks, n)
	c.mirrorNetworkLocked(n)
	return n, nil
}

// Network returns the network with the name, or nil.
func (c *Cloud) Network(name string) *Network {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.networkLocked(name)
}

func (c *Cloud) networkLocked(name string) *Network {
	for _, n := range c.networks {
		if n.name == name {
			return n
		}
	}
	return nil
}

// ServerSpec describes a server.
type ServerSpec struct {
	// Name is the hostname. Required.
	Name string
	// ID is the server (instance) ID; 0 picks 1000+n for the n-th server.
	ID int64
	// Networks are attached at creation, in this order (interface_num 1,
	// 2, ...), with the next free address of each subnet.
	Networks []string
	// ConfigurePrivate makes the simulator configure the private NICs
	// itself (up, ip/32, alias /32s, on-link route to the gateway, route to
	// the network via the gateway), as an image with a DHCP client would.
	// Leave it off when hc-agent is under test: configuring them is its job.
	ConfigurePrivate bool
	// Labels are the server's API labels (used by the API simulator).
	Labels map[string]string
}

// Server is one simulated server: a namespace with a public NIC and one
// private NIC per attached network.
type Server struct {
	c          *Cloud
	id         int64
	name       string
	index      int
	publicIPv4 netip.Addr
	publicIPv6 netip.Prefix
	publicMAC  net.HardwareAddr
	ns         *namespace
	configure  bool
	labels     map[string]string
	crashed    bool
	attached   []*attachment
	// lagging are detached networks the metadata still shows.
	lagging []*attachment
}

// attachment is a server's NIC in one private network.
type attachment struct {
	net     *Network
	ifNum   int
	mac     net.HardwareAddr
	ip      netip.Addr
	aliases []netip.Addr // routed to the server
	// shownAliases are the alias IPs the metadata service shows; they
	// follow aliases after the metadata lag.
	shownAliases []netip.Addr
	visible      bool // shown by the metadata service
	detached     bool // NIC gone, metadata may still lag
}

func (a *attachment) ifName() string      { return "ens" + strconv.Itoa(9+a.ifNum) }
func (a *attachment) addrs() []netip.Addr { return append([]netip.Addr{a.ip}, a.aliases...) }

// ID returns the server ID (instance-id).
func (s *Server) ID() int64 { return s.id }

// Name returns the server name (hostname).
func (s *Server) Name() string { return s.name }

// PublicIPv4 returns the server's public IPv4 address.
func (s *Server) PublicIPv4() netip.Addr { return s.publicIPv4 }

// PublicIPv6 returns the server's public IPv6 network; the server has its
// ::1 configured.
func (s *Server) PublicIPv6() netip.Prefix { return s.publicIPv6 }

// PublicMAC returns the MAC of the public NIC (96:...).
func (s *Server) PublicMAC() net.HardwareAddr { return s.publicMAC }

// PublicNIC returns the public NIC's name inside the server namespace.
func (s *Server) PublicNIC() string { return publicNIC }

// NetNS returns the name of the server's namespace, for `ip netns exec`.
func (s *Server) NetNS() string { return s.ns.name }

// NetlinkHandle returns a netlink handle bound to the server's namespace.
// The Cloud owns it; do not close it.
func (s *Server) NetlinkHandle() *netlink.Handle { return s.ns.nl }

// AddServer creates a server namespace, plugs its public NIC into the
// public bridge, configures the public addresses and routes (as the image
// would) and attaches the listed networks.
func (c *Cloud) AddServer(spec ServerSpec) (*Server, error) {
	if spec.Name == "" {
		return nil, errors.New("add server: a name is required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("add server %s: cloud is closed", spec.Name)
	}
	if c.serverLocked(spec.Name) != nil {
		return nil, fmt.Errorf("add server %s: name exists", spec.Name)
	}
	idx := len(c.servers) + 1
	if idx > 200 {
		return nil, fmt.Errorf("add server %s: at most 200 servers", spec.Name)
	}
	if spec.ID == 0 {
		spec.ID = int64(1000 + idx)
	}
	for _, o := range c.servers {
		if o.id == spec.ID {
			return nil, fmt.Errorf("add server %s: id %d exists", spec.Name, spec.ID)
		}
	}
	role := spec.Name
	if !roleRE.MatchString(role) {
		role = "srv" + strconv.Itoa(idx)
	}
	ns, err := c.newNSLocked(role)
	if err != nil {
		return nil, fmt.Errorf("add server %s: %w", spec.Name, err)
	}
	s := &Server{
		c:          c,
		id:         spec.ID,
		name:       spec.Name,
		index:      idx,
		publicIPv4: addrAdd(publicV4Base, 10+idx),
		publicIPv6: netip.MustParsePrefix(fmt.Sprintf("2001:db8:1:%x::/64", idx)),
		publicMAC:  net.HardwareAddr{0x96, 0, 0, 0, byte(idx >> 8), byte(idx)},
		ns:         ns,
		configure:  spec.ConfigurePrivate,
		labels:     maps.Clone(spec.Labels),
	}
	if err := c.plugPublic(s); err != nil {
		return nil, fmt.Errorf("add server %s: %w", spec.Name, err)
	}
	c.servers = append(c.servers, s)
	for _, nn := range spec.Networks {
		if err := c.attachLocked(s, nn); err != nil {
			return nil, fmt.Errorf("add server %s: %w", spec.Name, err)
		}
	}
	c.mirrorServerLocked(s)
	return s, nil
}

// plugPublic creates the public veth: eth0 in the server, p<idx> on the
// public bridge in the cloud namespace.
func (c *Cloud) plugPublic(s *Server) error {
	port := s.port()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: publicNIC, HardwareAddr: s.publicMAC, Namespace: netlink.NsFd(s.ns.ns)},
		PeerName:      port,
		PeerNamespace: netlink.NsFd(c.cloud.ns),
	}
	if err := c.cloud.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("add public veth %s: %w", port, err)
	}
	h := c.cloud.nl
	pl, err := h.LinkByName(port)
	if err != nil {
		return fmt.Errorf("find link %s: %w", port, err)
	}
	br, err := h.LinkByName(publicBridge)
	if err != nil {
		return fmt.Errorf("find link %s: %w", publicBridge, err)
	}
	if err := h.LinkSetMaster(pl, br); err != nil {
		return fmt.Errorf("attach %s to %s: %w", port, publicBridge, err)
	}
	if err := c.cloud.setLinkUp(port); err != nil {
		return err
	}
	// The cloud routes each server's public address to it (Hetzner's
	// public network is routed, /32 per server).
	if err := replaceRoute(h, netip.PrefixFrom(s.publicIPv4, 32), publicBridge, netip.Addr{}); err != nil {
		return err
	}
	if err := replaceRoute(h, s.publicIPv6, publicBridge, netip.Addr{}); err != nil {
		return err
	}
	sh := s.ns.nl
	if err := s.ns.setLinkUp(publicNIC); err != nil {
		return err
	}
	if err := addAddr(sh, publicNIC, netip.PrefixFrom(s.publicIPv4, 32)); err != nil {
		return err
	}
	if err := addAddr(sh, publicNIC, netip.PrefixFrom(s.publicIPv6.Addr().Next(), 64)); err != nil {
		return err
	}
	if err := c.cloud.waitOperUp(port, publicBridge); err != nil {
		return err
	}
	if err := s.ns.waitOperUp(publicNIC); err != nil {
		return err
	}
	// The public IPv4 is the preferred source so that the metadata service
	// recognises the caller even when a floating IP sits on the same NIC.
	if err := addDefaultRoute(sh, publicNIC, PublicGateway, s.publicIPv4); err != nil {
		return err
	}
	return addDefaultRoute(sh, publicNIC, PublicGateway6, netip.Addr{})
}

// port is the name of the server's public port on the bridge.
func (s *Server) port() string { return "p" + strconv.Itoa(s.index) }

// peer is the name of the server's veth in a network router.
func (s *Server) peer() string { return "s" + strconv.Itoa(s.index) }

// Server returns the server with the name, or nil.
func (c *Cloud) Server(name string) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serverLocked(name)
}

// Servers returns all servers in creation order.
func (c *Cloud) Servers() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.servers)
}

func (c *Cloud) serverLocked(name string) *Server {
	for _, s := range c.servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (c *Cloud) serverByIDLocked(id int64) *Server {
	for _, s := range c.servers {
		if s.id == id {
			return s
		}
	}
	return nil
}

// newNSLocked is newNS for callers holding c.mu.
func (c *Cloud) newNSLocked(role string) (*namespace, error) {
	c.mu.Unlock()
	defer c.mu.Lock()
	return c.newNS(role, true)
}

// AttachNetwork hot-plugs a NIC for the network into the server: the NIC
// appears in the server namespace (down and unconfigured, unless the server
// was created with ConfigurePrivate) and the metadata service shows the
// network, after the metadata lag if one is set.
func (c *Cloud) AttachNetwork(server, network string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.serverLocked(server)
	if s == nil {
		return fmt.Errorf("attach network %s to server %s: no such server", network, server)
	}
	return c.attachLocked(s, network)
}

func (c *Cloud) attachLocked(s *Server, network string) error {
	n := c.networkLocked(network)
	if n == nil {
		return fmt.Errorf("attach network %s to server %s: no such network", network, s.name)
	}
	if s.attachment(n) != nil {
		return fmt.Errorf("attach network %s to server %s: already attached", network, s.name)
	}
	ip, err := c.allocPrivateLocked(n)
	if err != nil {
		return fmt.Errorf("attach network %s to server %s: %w", network, s.name, err)
	}
	c.attachSeq++
	a := &attachment{
		net:   n,
		ifNum: s.freeIfNum(),
		mac:   net.HardwareAddr{0x86, 0, 0, byte(s.index), byte(c.attachSeq >> 8), byte(c.attachSeq)},
		ip:    ip,
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name:         a.ifName(),
			HardwareAddr: a.mac,
			MTU:          privateMTU,
			Namespace:    netlink.NsFd(s.ns.ns),
		},
		PeerName:      s.peer(),
		PeerNamespace: netlink.NsFd(n.router.ns),
	}
	if err := n.router.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("attach network %s to server %s: add veth: %w", network, s.name, err)
	}
	s.attached = append(s.attached, a)
	if !s.crashed {
		if err := n.router.setLinkUp(s.peer()); err != nil {
			return err
		}
		// A crashed server's veth is down and cannot carry routes; Restore
		// adds them.
		if err := s.routePrivate(a); err != nil {
			return err
		}
		if err := c.syncNetworkRoutesLocked(n); err != nil {
			return err
		}
	}
	if s.configure {
		if err := s.configurePrivate(a, nil); err != nil {
			return err
		}
		if !s.crashed {
			if err := s.ns.waitOperUp(a.ifName()); err != nil {
				return err
			}
		}
	}
	if err := c.syncPartitionsLocked(n); err != nil {
		return err
	}
	c.afterMetadataLag(func() { a.visible = !a.detached })
	c.log.Info("network attached", "server", s.name, "network", n.name, "nic", a.ifName(), "mac", a.mac.String(), "ip", a.ip)
	return nil
}

// configurePrivate configures the NIC as a DHCP image would and removes
// alias addresses no longer listed in old.
func (s *Server) configurePrivate(a *attachment, old []netip.Addr) error {
	h := s.ns.nl
	if err := s.ns.setLinkUp(a.ifName()); err != nil {
		return err
	}
	for _, ip := range a.addrs() {
		if err := addAddr(h, a.ifName(), netip.PrefixFrom(ip, 32)); err != nil {
			return err
		}
	}
	for _, ip := range old {
		if !slices.Contains(a.addrs(), ip) {
			if err := delAddr(h, a.ifName(), netip.PrefixFrom(ip, 32)); err != nil {
				return err
			}
		}
	}
	if err := replaceRoute(h, netip.PrefixFrom(a.net.gateway, 32), a.ifName(), netip.Addr{}); err != nil {
		return err
	}
	return replaceRoute(h, a.net.network, a.ifName(), a.net.gateway)
}

// freeIfNum returns the lowest interface number not in use.
func (s *Server) freeIfNum() int {
	for i := 1; ; i++ {
		used := false
		for _, a := range s.attached {
			if a.ifNum == i {
				used = true
			}
		}
		if !used {
			return i
		}
	}
}

func (s *Server) attachment(n *Network) *attachment {
	for _, a := range s.attached {
		if a.net == n {
			return a
		}
	}
	return nil
}

// allocPrivateLocked returns the lowest free host address of the subnet
// after the gateway.
func (c *Cloud) allocPrivateLocked(n *Network) (netip.Addr, error) {
	used := map[netip.Addr]bool{n.gateway: true}
	for _, s := range c.servers {
		if a := s.attachment(n); a != nil {
			for _, ip := range a.addrs() {
				used[ip] = true
			}
		}
	}
	for ip := n.gateway.Next(); n.subnet.Contains(ip); ip = ip.Next() {
		if !n.subnet.Contains(ip.Next()) {
			break // the broadcast address
		}
		if !used[ip] {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("subnet %s is full", n.subnet)
}

// DetachNetwork hot-unplugs the server's NIC of the network: the NIC
// disappears at once and the metadata service stops showing the network
// (after the metadata lag).
func (c *Cloud) DetachNetwork(server, network string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.serverLocked(server)
	n := c.networkLocked(network)
	if s == nil || n == nil {
		return fmt.Errorf("detach network %s from server %s: no such server or network", network, server)
	}
	a := s.attachment(n)
	if a == nil {
		return fmt.Errorf("detach network %s from server %s: not attached", network, server)
	}
	l, err := n.router.nl.LinkByName(s.peer())
	if err != nil {
		return fmt.Errorf("detach network %s from server %s: find link %s: %w", network, server, s.peer(), err)
	}
	// Deleting one end deletes the pair, and the routes with it.
	if err := n.router.nl.LinkDel(l); err != nil {
		return fmt.Errorf("detach network %s from server %s: delete link %s: %w", network, server, s.peer(), err)
	}
	a.detached = true
	s.attached = slices.DeleteFunc(s.attached, func(x *attachment) bool { return x == a })
	n.partitions = slices.DeleteFunc(n.partitions, func(p [2]*Server) bool { return p[0] == s || p[1] == s })
	if err := c.syncPartitionsLocked(n); err != nil {
		return err
	}
	// The metadata keeps showing the network until the lag passes.
	s.lagging = append(s.lagging, a)
	c.afterMetadataLag(func() {
		s.lagging = slices.DeleteFunc(s.lagging, func(x *attachment) bool { return x == a })
	})
	c.log.Info("network detached", "server", s.name, "network", n.name)
	return nil
}

// SetAliasIPs replaces the server's alias IPs in the network. The router
// routes them to the server at once; the metadata shows them after the lag.
// With an API simulator connected, the API's alias list changes too (for
// test set-up; the agent's changes come the other way, through
// change_alias_ips and OnAliasIPs).
func (c *Cloud) SetAliasIPs(server, network string, ips []netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.serverLocked(server)
	n := c.networkLocked(network)
	if s == nil || n == nil {
		return fmt.Errorf("set alias ips of server %s in network %s: no such server or network", server, network)
	}
	if err := c.setAliasesLocked(s, n, ips); err != nil {
		return err
	}
	if c.sim != nil {
		c.sim.SetAliasIPs(s.id, n.id, ips)
	}
	return nil
}

// setAliasesLocked routes the server's new alias IPs in the network to it,
// removes the routes of the ones it lost (only where they still point at
// this server: another server may have the address by now), and updates the
// metadata after the lag.
func (c *Cloud) setAliasesLocked(s *Server, n *Network, ips []netip.Addr) error {
	a := s.attachment(n)
	if a == nil {
		return fmt.Errorf("set alias ips of server %s in network %s: not attached", s.name, n.name)
	}
	for _, ip := range ips {
		if !n.subnet.Contains(ip) || ip == n.gateway || ip == a.ip {
			return fmt.Errorf("set alias ips of server %s in network %s: %s is not a free address of %s", s.name, n.name, ip, n.subnet)
		}
	}
	old := a.addrs()
	newAliases := slices.Clone(ips)
	a.aliases = newAliases
	if !s.crashed { // Restore routes the new set
		if err := s.routePrivate(a); err != nil {
			return err
		}
	}
	for _, ip := range old {
		if !slices.Contains(a.addrs(), ip) {
			if err := deleteRouteDev(n.router.nl, netip.PrefixFrom(ip, 32), s.peer()); err != nil {
				return err
			}
		}
	}
	if s.configure {
		if err := s.configurePrivate(a, old); err != nil {
			return err
		}
	}
	c.afterMetadataLag(func() { a.shownAliases = newAliases })
	return c.syncPartitionsLocked(n)
}

// afterMetadataLag runs fn (under c.mu) after the metadata lag, or now.
// Callers hold c.mu.
func (c *Cloud) afterMetadataLag(fn func()) {
	if c.opts.metadataLag <= 0 {
		fn()
		return
	}
	t := c.opts.afterFunc(c.opts.metadataLag, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		fn()
	})
	c.timers = append(c.timers, t)
}

// metadataFor finds the server that owns the source address (its public
// IPv4, a private or alias IP, or a floating IP it holds) and returns what
// the metadata service shows it.
func (c *Cloud) metadataFor(src netip.Addr) (metadataView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var owner *Server
	for _, s := range c.servers {
		if s.publicIPv4 == src || s.publicIPv6.Contains(src) {
			owner = s
		}
		for _, a := range s.attached {
			if slices.Contains(a.addrs(), src) {
				owner = s
			}
		}
	}
	for _, f := range c.fips {
		if f.holder != nil && f.ip.Contains(src) {
			owner = f.holder
		}
	}
	if owner == nil {
		return metadataView{}, false
	}
	return owner.metadataLocked(), true
}

// metadataLocked is what the metadata service shows the server now.
func (s *Server) metadataLocked() metadataView {
	v := metadataView{Summary: metadata.Summary{
		Hostname:         s.name,
		InstanceID:       s.id,
		PublicIPv4:       s.publicIPv4,
		AvailabilityZone: defaultZone,
		Region:           defaultRegn,
	}}
	shown := slices.Clone(s.lagging)
	for _, a := range s.attached {
		if a.visible {
			shown = append(shown, a)
		}
	}
	slices.SortFunc(shown, func(x, y *attachment) int { return x.ifNum - y.ifNum })
	for _, a := range shown {
		aliases := a.shownAliases
		if aliases == nil {
			aliases = []netip.Addr{}
		}
		v.PrivateNetworks = append(v.PrivateNetworks, metadata.PrivateNetwork{
			IP:           a.ip,
			AliasIPs:     slices.Clone(aliases),
			InterfaceNum: a.ifNum,
			MACAddress:   slices.Clone(a.mac),
			NetworkID:    a.net.id,
			NetworkName:  a.net.name,
			Network:      a.net.network,
			Subnet:       a.net.subnet,
			Gateway:      a.net.gateway,
		})
	}
	return v
}

// Metadata returns what the metadata service currently shows the server.
func (s *Server) Metadata() (metadata.Summary, []metadata.PrivateNetwork) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	v := s.metadataLocked()
	return v.Summary, v.PrivateNetworks
}

// syncPartitionsLocked rewrites the router's partition rules: for each
// partitioned pair, traffic entering from one server's veth towards any
// address of the other is silently dropped (blackhole), in both directions.
func (c *Cloud) syncPartitionsLocked(n *Network) error {
	h := n.router.nl
	rules, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list rules in %s: %w", n.router.name, err)
	}
	var errs []error
	for _, r := range rules {
		if r.Priority == partitionPri {
			r := r
			if err := h.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("delete partition rule in %s: %w", n.router.name, err))
			}
		}
	}
	for _, p := range n.partitions {
		for _, dir := range [][2]*Server{{p[0], p[1]}, {p[1], p[0]}} {
			from, to := dir[0], dir[1]
			ta := to.attachment(n)
			if ta == nil || from.attachment(n) == nil {
				continue
			}
			for _, ip := range ta.addrs() {
				r := netlink.NewRule()
				r.Priority = partitionPri
				r.Family = netlink.FAMILY_V4
				r.IifName = from.peer()
				r.Dst = prefixToIPNet(netip.PrefixFrom(ip, 32))
				r.Type = unix.RTN_BLACKHOLE
				if err := h.RuleAdd(r); err != nil {
					errs = append(errs, fmt.Errorf("add partition rule %s to %s in %s: %w", from.name, ip, n.router.name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Partition makes the private network drop all traffic between servers a
// and b (both directions, silently, like a broken link). Traffic between
// either of them and other servers still flows.
func (c *Cloud) Partition(network, a, b string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.networkLocked(network)
	sa, sb := c.serverLocked(a), c.serverLocked(b)
	if n == nil || sa == nil || sb == nil || sa == sb {
		return fmt.Errorf("partition %s and %s in network %s: no such network or servers", a, b, network)
	}
	n.partitions = append(n.partitions, [2]*Server{sa, sb})
	return c.syncPartitionsLocked(n)
}

// Heal removes every partition of the network.
func (c *Cloud) Heal(network string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.networkLocked(network)
	if n == nil {
		return fmt.Errorf("heal network %s: no such network", network)
	}
	n.partitions = nil
	return c.syncPartitionsLocked(n)
}

// Crash makes the server lose all connectivity at once (its public port and
// private veths go down on the cloud side) and SIGKILLs every process in
// its namespace, and returns once they have exited. Restore brings the
// links back; processes are not restarted.
func (c *Cloud) Crash(server string) error {
	c.mu.Lock()
	s := c.serverLocked(server)
	if s == nil {
		c.mu.Unlock()
		return fmt.Errorf("crash server %s: no such server", server)
	}
	s.crashed = true
	err := c.setServerLinksLocked(s, false)
	var procs []*Proc
	for _, p := range c.procs {
		if p.server == s {
			procs = append(procs, p)
		}
	}
	c.mu.Unlock()
	// The processes started here are killed through their handles: one
	// that was started just before may still be `ip netns exec` on its way
	// into the namespace, which a scan of the namespace would miss.
	for _, p := range procs {
		_ = p.Signal(syscall.SIGKILL)
	}
	// Crash returns only once every process is gone with its sockets
	// closed: a service restarted after Restore must not find its port
	// still bound by a dying process.
	if kerr := s.ns.killAll(5 * time.Second); kerr != nil {
		err = errors.Join(err, fmt.Errorf("crash server %s: %w", server, kerr))
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for _, p := range procs {
		select {
		case <-p.Done():
		case <-deadline.C:
			return errors.Join(err, fmt.Errorf("crash server %s: process %s (%d) not reaped", server, p.Name, p.PID()))
		}
	}
	c.log.Info("server crashed", "server", server)
	return err
}

// Restore reconnects a crashed server: its links come up again and the
// routers route its private and alias IPs to it again.
func (c *Cloud) Restore(server string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.serverLocked(server)
	if s == nil {
		return fmt.Errorf("restore server %s: no such server", server)
	}
	s.crashed = false
	if err := c.setServerLinksLocked(s, true); err != nil {
		return err
	}
	names := []string{s.port()}
	if err := c.cloud.waitOperUp(names...); err != nil {
		return err
	}
	return s.ns.waitOperUp(publicNIC)
}

// setServerLinksLocked takes the server's ports in the cloud and router
// namespaces down or up. Taking a veth down makes the kernel delete every
// route through it, so bringing a router's veth up routes the server's
// private and alias IPs to it again (including aliases set while the
// server was down).
func (c *Cloud) setServerLinksLocked(s *Server, up bool) error {
	set := (*namespace).setLinkDown
	if up {
		set = (*namespace).setLinkUp
	}
	var errs []error
	if up {
		errs = append(errs, set(c.cloud, s.port()))
	}
	for _, a := range s.attached {
		err := set(a.net.router, s.peer())
		if err == nil && up {
			err = s.routePrivate(a)
		}
		if err == nil && up {
			err = c.syncNetworkRoutesLocked(a.net)
		}
		errs = append(errs, err)
	}
	if !up {
		// The public port goes last: a failover daemon that watches the
		// public NIC would otherwise still reach its peers over a private
		// network in between (keepalived, which tracks the interface of
		// its VIP, sends its peers a priority 0 advertisement on the way
		// to FAULT, and a standby takes over after its skew time, 0.6 s,
		// instead of detecting the crash).
		errs = append(errs, set(c.cloud, s.port()))
	}
	return errors.Join(errs...)
}

// routePrivate routes the attachment's private and alias IPs (/32 each) to
// the server's veth in the network's router. The veth must be up.
func (s *Server) routePrivate(a *attachment) error {
	for _, ip := range a.addrs() {
		if err := replaceRoute(a.net.router.nl, netip.PrefixFrom(ip, 32), s.peer(), netip.Addr{}); err != nil {
			return err
		}
	}
	return nil
}

// addrAdd returns a + n for a small n.
func addrAdd(a netip.Addr, n int) netip.Addr {
	for range n {
		a = a.Next()
	}
	return a
}

var _ http.Handler = metadataHandler{}
