package simcloud

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// FloatingIPSpec describes a floating IP.
type FloatingIPSpec struct {
	// Name is the floating IP's name. Required.
	Name string
	// ID is the floating IP ID; 0 picks 500+n for the n-th floating IP.
	ID int64
	// IPv6 picks the next free /64 of 2001:db8:f00::/48 instead of the
	// next free address of 198.51.100.0/24. Ignored when IP is set.
	IPv6 bool
	// IP is the floating IP as the API shows it: an IPv4 /32 or an IPv6
	// /64. The zero value allocates one.
	IP netip.Prefix
	// Labels are the floating IP's API labels (used by the API simulator).
	Labels map[string]string
}

// FloatingIP is a floating IP of the simulated cloud. The cloud namespace
// routes it to the server holding it.
type FloatingIP struct {
	id     int64
	name   string
	ip     netip.Prefix
	labels map[string]string
	holder *Server
}

// ID returns the floating IP ID.
func (f *FloatingIP) ID() int64 { return f.id }

// Name returns the floating IP's name.
func (f *FloatingIP) Name() string { return f.name }

// Prefix returns the floating IP as the API shows it (/32 or /64).
func (f *FloatingIP) Prefix() netip.Prefix { return f.ip }

// Addr returns the address a server configures and a client connects to:
// the IPv4 address itself, or ::1 of the IPv6 network.
func (f *FloatingIP) Addr() netip.Addr {
	if f.ip.Addr().Is4() {
		return f.ip.Addr()
	}
	return f.ip.Masked().Addr().Next()
}

// HostPrefix returns Addr with the length hc-agent configures: /32 for
// IPv4, /64 for IPv6.
func (f *FloatingIP) HostPrefix() netip.Prefix {
	return netip.PrefixFrom(f.Addr(), f.ip.Bits())
}

// URL returns http://Addr/ (with brackets for IPv6).
func (f *FloatingIP) URL() string {
	return "http://" + netip.AddrPortFrom(f.Addr(), 80).String() + "/"
}

// AddFloatingIP creates an unassigned floating IP.
func (c *Cloud) AddFloatingIP(spec FloatingIPSpec) (*FloatingIP, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if spec.Name == "" {
		return nil, fmt.Errorf("add floating ip: a name is required")
	}
	if spec.ID == 0 {
		spec.ID = int64(500 + len(c.fips) + 1)
	}
	if !spec.IP.IsValid() {
		// The n-th floating IP of its family.
		n := 1
		for _, f := range c.fips {
			if f.ip.Addr().Is6() == spec.IPv6 {
				n++
			}
		}
		if spec.IPv6 {
			spec.IP = netip.MustParsePrefix(fmt.Sprintf("2001:db8:f00:%x::/64", n))
		} else {
			spec.IP = netip.PrefixFrom(addrAdd(fipV4Base, 10+n), 32)
		}
	}
	spec.IP = spec.IP.Masked()
	if (spec.IP.Addr().Is4() && spec.IP.Bits() != 32) || (spec.IP.Addr().Is6() && spec.IP.Bits() != 64) {
		return nil, fmt.Errorf("add floating ip %s: %s is neither an IPv4 /32 nor an IPv6 /64", spec.Name, spec.IP)
	}
	for _, f := range c.fips {
		if f.id == spec.ID || f.ip.Overlaps(spec.IP) || f.name == spec.Name {
			return nil, fmt.Errorf("add floating ip %s: id, name or address exists", spec.Name)
		}
	}
	f := &FloatingIP{id: spec.ID, name: spec.Name, ip: spec.IP, labels: maps.Clone(spec.Labels)}
	c.fips = append(c.fips, f)
	c.mirrorFIPLocked(f)
	return f, nil
}

// FloatingIPs returns all floating IPs in creation order.
func (c *Cloud) FloatingIPs() []*FloatingIP {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.fips)
}

// Holder returns the name of the server the floating IP is routed to, or ""
// when it is unassigned.
func (c *Cloud) Holder(f *FloatingIP) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.holder == nil {
		return ""
	}
	return f.holder.name
}

// RouteFloatingIP routes the floating IP to the server ("" unassigns it: the
// route is removed and clients get "unreachable"). It is what an assign
// action does once it succeeds.
func (c *Cloud) RouteFloatingIP(ip netip.Prefix, server string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fipByPrefixLocked(ip)
	if f == nil {
		return fmt.Errorf("route floating ip %s: no such floating ip", ip)
	}
	var s *Server
	if server != "" {
		if s = c.serverLocked(server); s == nil {
			return fmt.Errorf("route floating ip %s to %s: no such server", ip, server)
		}
	}
	return c.routeLocked(f, s)
}

// OnAssign has the signature of the API simulator's assign hook
// (cloudapitest.OnAssign): it routes the floating IP to the server with the
// ID, or removes the route for serverID 0. An unknown floating IP is added
// (named fip-<id>); errors are logged, since the hook cannot return one.
func (c *Cloud) OnAssign(floatingIPID, serverID int64, ip netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var f *FloatingIP
	for _, x := range c.fips {
		if x.id == floatingIPID {
			f = x
		}
	}
	if f == nil {
		f = &FloatingIP{id: floatingIPID, name: fmt.Sprintf("fip-%d", floatingIPID), ip: ip.Masked()}
		c.fips = append(c.fips, f)
	}
	var s *Server
	if serverID != 0 {
		if s = c.serverByIDLocked(serverID); s == nil {
			c.log.Error("route floating ip: no such server", "floating_ip", f.ip, "server_id", serverID)
			return
		}
	}
	if err := c.routeLocked(f, s); err != nil {
		c.log.Error("route floating ip", "floating_ip", f.ip, "server_id", serverID, "err", err)
	}
}

func (c *Cloud) fipByPrefixLocked(ip netip.Prefix) *FloatingIP {
	for _, f := range c.fips {
		if f.ip.Overlaps(ip) {
			return f
		}
	}
	return nil
}

// routeLocked points the floating IP's route in the cloud namespace at the
// server's public address (so the bridge delivers it to that server's MAC),
// or deletes it for a nil server.
func (c *Cloud) routeLocked(f *FloatingIP, s *Server) error {
	if c.closed {
		return fmt.Errorf("route floating ip %s: cloud is closed", f.ip)
	}
	if s == nil {
		if err := deleteRoute(c.cloud.nl, f.ip); err != nil {
			return err
		}
		f.holder = nil
		c.log.Info("floating ip unassigned", "floating_ip", f.ip)
		return nil
	}
	via := s.publicIPv4
	if f.ip.Addr().Is6() {
		via = s.publicIPv6.Addr().Next()
	}
	if err := replaceRoute(c.cloud.nl, f.ip, publicBridge, via); err != nil {
		return err
	}
	f.holder = s
	c.log.Info("floating ip routed", "floating_ip", f.ip, "server", s.name)
	return nil
}

// ConfigureFloatingIP adds the floating IP's HostPrefix to the server's
// public NIC, as hc-agent does for a floating IP it holds. Tests of the
// simulator and the demo's steps without the agent use it.
func (s *Server) ConfigureFloatingIP(f *FloatingIP) error {
	return addAddr(s.ns.nl, publicNIC, f.HostPrefix())
}
