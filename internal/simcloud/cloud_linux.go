package simcloud

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/metadata"
)

// Fixed addresses of the simulated cloud. They live only inside the
// namespaces the Cloud creates.
var (
	// MetadataAddr is the metadata service address, as on Hetzner Cloud.
	MetadataAddr = netip.MustParseAddr("169.254.169.254")
	// PublicGateway is the on-link gateway of every server's public NIC.
	PublicGateway = netip.MustParseAddr("172.31.1.1")
	// PublicGateway6 is the IPv6 gateway of every server's public NIC.
	PublicGateway6 = netip.MustParseAddr("fe80::1")
	// APIAddr is where the API simulator listens (port 80).
	APIAddr = netip.MustParseAddr("203.0.113.254")
	// ClientAddr and ClientAddr6 are the client namespace's addresses.
	ClientAddr  = netip.MustParseAddr("192.0.2.2")
	ClientAddr6 = netip.MustParseAddr("2001:db8:c::2")
)

var (
	clientGW     = netip.MustParsePrefix("192.0.2.1/24")
	clientGW6    = netip.MustParsePrefix("2001:db8:c::1/64")
	clientPrefix = netip.MustParsePrefix("192.0.2.2/24")
	clientPfx6   = netip.MustParsePrefix("2001:db8:c::2/64")
)

// Link names. Each namespace has its own set of names, so they need no run
// prefix.
const (
	publicBridge = "br-pub"     // in the cloud namespace
	clientPort   = "client"     // cloud side of the client's veth
	publicNIC    = "eth0"       // in server and client namespaces
	privateMTU   = 1450         // the private networks' MTU on Hetzner Cloud
	partitionPri = 100          // priority of partition rules in a router
	routeProto   = 0xac         // marks routes the simulator adds (172)
	defaultZone  = "fsn1-dc14"  // availability zone reported by metadata
	defaultRegn  = "eu-central" // network zone reported by metadata
)

// runCounter numbers the clouds of one process.
var runCounter atomic.Int64

// Option configures a Cloud.
type Option func(*options)

type options struct {
	log         *slog.Logger
	api         http.Handler
	metadataLag time.Duration
	// afterFunc schedules the delayed metadata updates; tests replace it.
	afterFunc func(time.Duration, func()) interface{ Stop() bool }
}

// WithLogger sets the logger. The default discards everything.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithAPI serves h (normally a cloudapitest.Sim) at APIEndpoint. Without it
// the API address answers 503.
func WithAPI(h http.Handler) Option { return func(o *options) { o.api = h } }

// WithMetadataLag delays metadata changes after a hotplug (attach, detach,
// alias IPs) by d, as the real service sometimes lags behind the NIC.
func WithMetadataLag(d time.Duration) Option { return func(o *options) { o.metadataLag = d } }

// Cloud is a running simulated cloud. Its methods are safe for concurrent
// use. Close tears everything down and must always be called.
type Cloud struct {
	log      *slog.Logger
	opts     options
	base     nsName // PID and run; Role is set per namespace
	cloud    *namespace
	client   *namespace
	httpSrvs []*http.Server
	api      atomic.Pointer[http.Handler]

	mu        sync.Mutex
	closed    bool
	networks  []*Network
	servers   []*Server
	fips      []*FloatingIP
	procs     []*Proc
	attachSeq int
	timers    []interface{ Stop() bool }
	nsList    []*namespace
	sim       *cloudapitest.Sim // set by ConnectAPI
}

// New builds the cloud namespace (public bridge and router, metadata
// service, API address) and the client namespace. It first removes
// namespaces left behind by earlier runs whose process is gone. On error
// everything built so far is torn down.
func New(ctx context.Context, opts ...Option) (_ *Cloud, err error) {
	o := options{
		log: slog.New(slog.DiscardHandler),
		afterFunc: func(d time.Duration, f func()) interface{ Stop() bool } {
			return time.AfterFunc(d, f)
		},
	}
	for _, opt := range opts {
		opt(&o)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("create simulated cloud: must run as root")
	}
	if removed, err := removeStale(); err != nil {
		o.log.Warn("remove stale namespaces", "removed", removed, "err", err)
	} else if len(removed) > 0 {
		o.log.Info("removed stale namespaces", "names", removed)
	}
	c := &Cloud{
		log:  o.log,
		opts: o,
		base: nsName{PID: os.Getpid(), Run: int(runCounter.Add(1))},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if c.cloud, err = c.newNS("cloud", true); err != nil {
		return nil, err
	}
	c.SetAPI(o.api)
	if c.client, err = c.newNS("client", false); err != nil {
		return nil, err
	}
	if err := c.buildCloudNS(); err != nil {
		return nil, err
	}
	if err := c.buildClientNS(); err != nil {
		return nil, err
	}
	if err := c.startServices(); err != nil {
		return nil, err
	}
	c.log.Info("simulated cloud up", "cloud_ns", c.cloud.name)
	return c, ctx.Err()
}

// RunPrefix is the prefix of every namespace name of this cloud.
func (c *Cloud) RunPrefix() string {
	return fmt.Sprintf("%s%d-%d-", namePrefix, c.base.PID, c.base.Run)
}

// CloudNetNS is the name of the cloud namespace (for `ip netns exec`).
func (c *Cloud) CloudNetNS() string { return c.cloud.name }

// ClientNetNS is the name of the client namespace.
func (c *Cloud) ClientNetNS() string { return c.client.name }

// APIEndpoint is the API simulator's base URL, for HCLOUD_ENDPOINT. It is
// reachable from every server namespace.
func (c *Cloud) APIEndpoint() string { return "http://" + APIAddr.String() + "/v1" }

// MetadataEndpoint is the metadata base URL, reachable from every server
// namespace (and only there).
func (c *Cloud) MetadataEndpoint() string { return metadata.DefaultEndpoint }

// newNS creates one namespace of this run with the sysctls every namespace
// needs: no IPv6 duplicate address detection (addresses are usable at once;
// no test waits for DAD) and, for routers, forwarding.
func (c *Cloud) newNS(role string, router bool) (*namespace, error) {
	name := nsName{PID: c.base.PID, Run: c.base.Run, Role: role}.String()
	n, err := newNamespace(name)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nsList = append(c.nsList, n)
	c.mu.Unlock()
	sysctls := [][2]string{
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
	}
	if router {
		sysctls = append(sysctls,
			[2]string{"net.ipv4.ip_forward", "1"},
			[2]string{"net.ipv6.conf.all.forwarding", "1"})
	}
	for _, kv := range sysctls {
		if err := n.sysctl(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func (c *Cloud) buildCloudNS() error {
	h := c.cloud.nl
	// Without multicast snooping the bridge floods neighbour solicitations
	// to every port, whatever MLD state the servers announced; the cloud's
	// routing, not the bridge, decides who gets traffic.
	snooping := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: publicBridge}, MulticastSnooping: &snooping}
	if err := h.LinkAdd(br); err != nil {
		return fmt.Errorf("add bridge %s: %w", publicBridge, err)
	}
	if err := addAddr(h, publicBridge, netip.PrefixFrom(PublicGateway, 32)); err != nil {
		return err
	}
	if err := addAddr(h, publicBridge, netip.PrefixFrom(PublicGateway6, 64)); err != nil {
		return err
	}
	if err := c.cloud.setLinkUp(publicBridge); err != nil {
		return err
	}
	for _, a := range []netip.Addr{MetadataAddr, APIAddr} {
		if err := addAddr(h, "lo", netip.PrefixFrom(a, 32)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cloud) buildClientNS() error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: publicNIC, Namespace: netlink.NsFd(c.client.ns)},
		PeerName:      clientPort,
		PeerNamespace: netlink.NsFd(c.cloud.ns),
	}
	if err := c.cloud.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("add client veth: %w", err)
	}
	for _, p := range []netip.Prefix{clientGW, clientGW6} {
		if err := addAddr(c.cloud.nl, clientPort, p); err != nil {
			return err
		}
	}
	for _, p := range []netip.Prefix{clientPrefix, clientPfx6} {
		if err := addAddr(c.client.nl, publicNIC, p); err != nil {
			return err
		}
	}
	if err := c.cloud.setLinkUp(clientPort); err != nil {
		return err
	}
	if err := c.client.setLinkUp(publicNIC); err != nil {
		return err
	}
	if err := c.cloud.waitOperUp(clientPort); err != nil {
		return err
	}
	if err := c.client.waitOperUp(publicNIC); err != nil {
		return err
	}
	if err := addDefaultRoute(c.client.nl, publicNIC, clientGW.Addr(), netip.Addr{}); err != nil {
		return err
	}
	return addDefaultRoute(c.client.nl, publicNIC, clientGW6.Addr(), netip.Addr{})
}

// startServices starts the metadata service and the API address in the
// cloud namespace.
func (c *Cloud) startServices() error {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := c.api.Load()
		if h == nil {
			http.Error(w, "no API simulator configured", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})
	svcs := []struct {
		addr netip.AddrPort
		h    http.Handler
	}{
		{netip.AddrPortFrom(MetadataAddr, 80), metadataHandler{lookup: c.metadataFor}},
		{netip.AddrPortFrom(APIAddr, 80), api},
	}
	for _, s := range svcs {
		ln, err := c.cloud.listen(s.addr.String())
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
		c.httpSrvs = append(c.httpSrvs, srv)
		// The goroutine exits when Close shuts the server down.
		go func() { _ = srv.Serve(ln) }()
	}
	return nil
}

// listen opens a TCP listener inside the namespace.
func (n *namespace) listen(addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s in namespace %s: %w", addr, n.name, err)
	}
	return ln, nil
}

// dialer returns a DialContext function whose sockets are created inside
// the namespace.
func (n *namespace) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := n.do(func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// httpClient returns an HTTP client whose connections start inside the
// namespace. Keep-alives are off: every request is a new connection, so it
// follows the current routing (what a probe of a floating IP must see).
func (n *namespace) httpClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:       n.dialer(),
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Client returns an HTTP client that sends its requests from the client
// namespace (outside every server, like a user on the Internet).
func (c *Cloud) Client() *http.Client { return c.client.httpClient() }

// Get fetches url from the client namespace and returns the trimmed body.
// A status other than 200 is an error.
func (c *Cloud) Get(ctx context.Context, url string) (string, error) {
	return get(ctx, c.client.httpClient(), url)
}

// ClientDo runs fn with the calling thread inside the client namespace; use
// it for things Get cannot do (UDP, raw sockets). Sockets fn creates stay in
// the client namespace.
func (c *Cloud) ClientDo(fn func() error) error { return c.client.do(fn) }

// Close tears the cloud down: it stops the services and probes' targets,
// kills every process started in a server namespace (SIGKILL, then waits for
// it) and every other process still inside one of the namespaces, and
// deletes the namespaces, which deletes all veths and bridges. It is
// idempotent and safe to call from a deferred call, t.Cleanup and a signal
// handler at the same time.
func (c *Cloud) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	procs := slices.Clone(c.procs)
	nsList := slices.Clone(c.nsList)
	srvs := slices.Clone(c.httpSrvs)
	for _, t := range c.timers {
		t.Stop()
	}
	c.mu.Unlock()

	var errs []error
	for _, s := range srvs {
		_ = s.Close()
	}
	for _, p := range procs {
		if err := p.Kill(); err != nil {
			errs = append(errs, err)
		}
	}
	// Anything else inside our namespaces (children of the agent, or
	// processes started by hand with ip netns exec) dies too. Stopped
	// processes die from SIGKILL as well.
	for _, n := range nsList {
		for _, pid := range n.pids() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, n := range nsList {
		if err := n.close(); err != nil {
			errs = append(errs, err)
		}
	}
	c.log.Info("simulated cloud torn down", "namespaces", len(nsList))
	return errors.Join(errs...)
}

// Leftovers lists what of this cloud still exists: namespaces whose name
// starts with RunPrefix, and processes inside any namespace this cloud
// created. After Close it must be empty; tests and the demo check that.
func (c *Cloud) Leftovers() []string {
	var out []string
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), c.RunPrefix()) {
			out = append(out, "namespace "+e.Name())
		}
	}
	c.mu.Lock()
	nsList := slices.Clone(c.nsList)
	procs := slices.Clone(c.procs)
	c.mu.Unlock()
	for _, n := range nsList {
		for _, pid := range pidsInNetNS(n.inode) {
			out = append(out, fmt.Sprintf("process %d in namespace %s", pid, n.name))
		}
	}
	for _, p := range procs {
		if processAlive(p.PID()) && !p.exited() {
			out = append(out, fmt.Sprintf("process %d (%s)", p.PID(), p.Name))
		}
	}
	return out
}

// addAddr adds a permanent address without duplicate address detection.
func addAddr(h *netlink.Handle, link string, p netip.Prefix) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("find link %s: %w", link, err)
	}
	a := &netlink.Addr{IPNet: prefixToIPNet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := h.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add address %s to %s: %w", p, link, err)
	}
	if p.Addr().Is6() {
		return waitLocal6(h, p.Addr())
	}
	return nil
}

// waitLocal6 waits until the kernel has installed the local route of an
// IPv6 address. Even without duplicate address detection the kernel does
// that from a work queue, tens of milliseconds after the address was added;
// a packet arriving in between is not delivered locally and the sender
// retransmits a second later.
func waitLocal6(h *netlink.Handle, a netip.Addr) error {
	filter := &netlink.Route{Table: unix.RT_TABLE_LOCAL, Dst: prefixToIPNet(netip.PrefixFrom(a, 128))}
	deadline := time.Now().Add(2 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		rs, err := h.RouteListFiltered(netlink.FAMILY_V6, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
		if err != nil {
			return fmt.Errorf("list local routes for %s: %w", a, err)
		}
		if len(rs) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for local route of %s: not installed", a)
		}
		<-tick.C
	}
}

// delAddr deletes an address; already gone counts as success.
func delAddr(h *netlink.Handle, link string, p netip.Prefix) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("find link %s: %w", link, err)
	}
	if err := h.AddrDel(l, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("delete address %s from %s: %w", p, link, err)
	}
	return nil
}

// addDefaultRoute adds a default route via an on-link gateway, with src as
// the preferred source when valid.
func addDefaultRoute(h *netlink.Handle, link string, gw, src netip.Addr) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("find link %s: %w", link, err)
	}
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if gw.Is6() {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	r := &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       prefixToIPNet(dst),
		Gw:        net.IP(gw.AsSlice()),
		Flags:     int(netlink.FLAG_ONLINK),
		Protocol:  routeProto,
	}
	if src.IsValid() {
		r.Src = net.IP(src.AsSlice())
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("replace default route via %s dev %s: %w", gw, link, err)
	}
	return nil
}

// replaceRoute routes dst to link, via gw when gw is valid (else scope
// link).
func replaceRoute(h *netlink.Handle, dst netip.Prefix, link string, gw netip.Addr) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("find link %s: %w", link, err)
	}
	r := &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       prefixToIPNet(dst),
		Protocol:  routeProto,
	}
	if gw.IsValid() {
		r.Gw = net.IP(gw.AsSlice())
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("replace route %s dev %s: %w", dst, link, err)
	}
	return nil
}

// deleteRoute deletes the route to dst; already gone counts as success.
func deleteRoute(h *netlink.Handle, dst netip.Prefix) error {
	err := h.RouteDel(&netlink.Route{Dst: prefixToIPNet(dst)})
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete route %s: %w", dst, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet { return ipconv.IPNet(p) }

// StartProbe probes url from the client namespace every interval (see
// StartProbe).
func (c *Cloud) StartProbe(ctx context.Context, url string, interval, timeout time.Duration) *Probe {
	return StartProbe(ctx, c.Client(), url, interval, timeout)
}

// SetAPI serves h at APIEndpoint from now on (it replaces WithAPI's
// handler). Use it when the API simulator needs the Cloud first, e.g. to
// pass Cloud.OnAssign as its assign hook.
func (c *Cloud) SetAPI(h http.Handler) {
	if h == nil {
		c.api.Store(nil)
		return
	}
	c.api.Store(&h)
}
