package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/statedir"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
	"github.com/hc-agent/hc-agent/netconf"
)

// OwnedFile is the netconf ownership record inside the state directory.
const OwnedFile = netconf.OwnedFileName

// RunDaemon is `hc-agent run`: NewDaemon, then Run until ctx is done.
func RunDaemon(ctx context.Context, cfg config.Config, opts Options, ns *netns.NsHandle) error {
	d, err := NewDaemon(cfg, opts, ns)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// Daemon is the supervisor with the daemon's wiring.
type Daemon struct {
	*Agent
	w *wiring
}

// NewDaemon is the daemon's composition root: it builds each client once
// (one netlink handle, one metadata client and, once the metadata summary
// is read, one cloudapi.Client, so one request budget), and Run has wiring
// build the private network reconciler, the floating IP host
// configuration, the floating IP manager and the failover groups and hands
// them to the supervisor. cfg is checked; opts.Log is the logger. With ns
// set, netlink acts in that network namespace (tests create one); the
// metadata and API clients dial from the current one.
func NewDaemon(cfg config.Config, opts Options, ns *netns.NsHandle) (*Daemon, error) {
	ipv6Host, err := cfg.FloatingIPs.IPv6HostAddr()
	if err != nil {
		return nil, fmt.Errorf("create daemon: %w", err)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	var h *netlink.Handle
	if ns != nil {
		h, err = netlink.NewHandleAt(*ns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("create daemon: open netlink handle: %w", err)
	}
	if opts.CheckMetadataRoute == nil {
		// The black-hole check and pin need no metadata: the supervisor runs
		// them before every metadata read until the summary answers.
		opts.CheckMetadataRoute = metadataRouteCheck(h, cfg, opts.Log.With("component", ComponentNetconf))
	}
	a, err := New(cfg, opts)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("create daemon: %w", err)
	}
	md := metadata.New(
		metadata.WithEndpoint(cfg.Metadata.Endpoint),
		metadata.WithTimeout(cfg.Metadata.Timeout),
		metadata.WithAttempts(cfg.Metadata.Attempts),
		metadata.WithLogger(opts.Log),
	)
	return &Daemon{Agent: a, w: &wiring{cfg: cfg, a: a, h: h, md: md, ns: ns, ipv6Host: ipv6Host, log: opts.Log}}, nil
}

// Run runs the daemon until ctx is done (see Agent.Run) and then releases
// the netlink handle.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.w.h.Close()
	return d.Agent.Run(ctx, d.w.md, d.w.wire)
}

// wiring is what NewDaemon built before the metadata summary: the clients
// that wire hands to the components.
type wiring struct {
	cfg      config.Config
	a        *Agent
	h        *netlink.Handle
	md       *metadata.Client
	ns       *netns.NsHandle
	ipv6Host netip.Addr
	log      *slog.Logger
}

// wire builds every component once this server's identity (the metadata
// summary) is known and the state directory is claimed for it: the private
// network reconciler, the one API client (one budget), the floating IP
// host configuration, the manager and the failover groups. It is straight
// line: each part is built here, once, and passed down.
func (d *wiring) wire(ctx context.Context, sum metadata.Summary) (Components, error) {
	cfg, a, h, md, ns, ipv6Host, log := d.cfg, d.a, d.h, d.md, d.ns, d.ipv6Host, d.log
	m := a.Metrics()
	var c Components
	// One netlink socket hears the kernel's events for the Reconciler and
	// the AddressRestorer (issue 14).
	events := netconf.NewKernelEvents(ns)
	if cfg.PrivateNetworks.IsEnabled() {
		src := &timedSource{src: md, m: m}
		nopts := []netconf.ReconcilerOption{
			netconf.WithOwnedFile(filepath.Join(cfg.StateDir, OwnedFile)),
			netconf.WithOnRestore(m.ObserveRestore),
			netconf.WithOnReconcile(func(res netconf.Result, err error) {
				a.Report(Report{
					Component: ComponentNetconf, Duration: src.since(), Changes: res.Writes,
					Blackholed: res.MetadataBlackholed, Err: err,
				})
			}),
			netconf.WithEvents(events),
		}
		c.Netconf = netconf.New(NetconfOptions(cfg), src, h, log.With("component", ComponentNetconf), nopts...)
	}
	if cfg.API.Token == "" {
		noToken(log, cfg)
		return c, nil
	}
	// The one API client of the process: failover calls (urgent) go
	// before the manager's polling in its one budget.
	api := newAPIClient(cfg, m, log, a.deps.Build.Version)
	host, err := netconf.NewFloatingIPApplier(h, filepath.Join(cfg.StateDir, statedir.FloatingIPOwnedFile), log.With("component", ComponentFloatingIP))
	if err != nil {
		return Components{}, fmt.Errorf("wire floating ips: %w", err)
	}
	groupCfg := cfg
	// share connects the manager with the groups' gossip: only a group's
	// holder lists the floating IPs periodically (issue 14). Without a
	// manager the groups advertise no read, and their standbys read.
	var share *floatingip.ReadShare
	if cfg.FloatingIPs.IsEnabled() {
		share = floatingip.NewReadShare(sum.InstanceID)
		mc, err := managerConfig(cfg, sum, ipv6Host, m, a.Report)
		if err != nil {
			return Components{}, fmt.Errorf("create floating ip manager: %w", err)
		}
		mc.Share = share
		mc.OnMode = managerCadence(a, cfg.API.PollInterval)
		mgr, err := floatingip.NewManager(mc, api, host, log.With("component", ComponentFloatingIP))
		if err != nil {
			return Components{}, fmt.Errorf("create floating ip manager: %w", err)
		}
		c.FloatingIP = fipComponent{m: mgr}
	} else {
		// No floating IP addresses on this host: groups that hold floating
		// IPs do not start; groups of private VIPs only do.
		groupCfg.Groups = privateOnlyGroups(cfg.Groups, log)
	}
	// Private VIPs and egress of the groups work on the same netlink
	// handle; built once here, since a failed group start is retried.
	vips := netconf.NewPrivateVIPs(h)
	egress := netconf.NewEgressController(h, cfg.EgressGroups(), log.With("component", "egress"))
	// A DHCP client's flush or an operator's `ip addr flush` of a NIC is
	// undone from the address event, not at the owner's next API read.
	c.Restore = netconf.NewAddressRestorer(nil, events, log.With("component", ComponentRestore), m.ObserveRestore,
		netconf.RestoreTarget{Kind: metrics.KindFloatingIP, Restore: host.Restore},
		netconf.RestoreTarget{Kind: metrics.KindPrivateVIP, Restore: vips.Restore})
	gp := groupsParams{
		cfg: groupCfg, self: sum.InstanceID, ipv6Host: ipv6Host, api: api, host: host,
		nets: md, metrics: m, log: log,
		newMembership: func(g config.Group, self int64, bind string, peers []string, log *slog.Logger, m *metrics.Metrics) (floatingip.Membership, error) {
			return newNamedGossip(g, self, sum.Hostname, bind, peers, log, m)
		},
		privateHost: vips, egress: egress, share: share,
	}
	// A reload may add groups later, on the same clients.
	c.Factory = gp
	if len(groupCfg.Groups) > 0 {
		c.Groups = func(ctx context.Context) ([]Group, error) { return newGroups(ctx, gp) }
	}
	return c, nil
}

// privateOnlyGroups returns the groups that hold no floating IP, and warns
// once about the others, which floating_ips.enabled: false keeps from
// starting.
func privateOnlyGroups(groups []config.Group, log *slog.Logger) []config.Group {
	var keep []string
	var out []config.Group
	for _, g := range groups {
		if len(g.FloatingIPs) > 0 || g.FloatingIPSelector != "" {
			keep = append(keep, g.Name)
			continue
		}
		out = append(out, g)
	}
	if len(keep) > 0 {
		log.Warn("floating_ips disabled: failover groups that hold floating IPs are not started", "groups", strings.Join(keep, ","))
	}
	return out
}

// noToken says that the API parts do not start without a token: a
// warning when a failover group needs it, information otherwise (the
// floating IP manager is optional; issue 15 item 7).
func noToken(log *slog.Logger, cfg config.Config) {
	switch {
	case len(cfg.Groups) > 0:
		log.Warn("no API token: floating IPs and failover groups are not started")
	case cfg.FloatingIPs.IsEnabled():
		log.Info("no API token: floating IPs assigned to this server are not configured")
	}
}

// newGossip starts a group's membership: memberlist over the private
// network, encrypted with the group's key file (config validation refuses
// a memberlist group without one unless insecure).
func newGossip(g config.Group, self int64, bind string, peers []string, log *slog.Logger, m *metrics.Metrics) (floatingip.Membership, error) {
	return newNamedGossip(g, self, "", bind, peers, log, m)
}

// newNamedGossip is newGossip that advertises this server's hostname, so
// that the members' status shows names.
func newNamedGossip(g config.Group, self int64, hostname, bind string, peers []string, log *slog.Logger, m *metrics.Metrics) (floatingip.Membership, error) {
	var keys [][]byte
	if g.KeyFile != "" {
		k, err := floatingip.LoadKeyFile(g.KeyFile)
		if err != nil {
			return nil, err
		}
		keys = k
	}
	return floatingip.NewGossip(floatingip.GossipConfig{
		Group:    g.Name,
		Self:     self,
		Bind:     bind,
		Port:     g.Port,
		Peers:    peers,
		Keys:     keys,
		Insecure: g.Insecure,
		Hostname: hostname,
		Log:      log,
		// A peer with another key shows in a counter; the log gets one
		// warning per peer.
		DecryptFailed: func() { m.IncGossipDecryptError(g.Name) },
	})
}

// timedSource counts metadata reads and notes when a reconcile started: a
// netconf reconcile begins with its metadata read.
type timedSource struct {
	src netconf.Source
	m   *metrics.Metrics

	mu    sync.Mutex
	start time.Time
}

func (s *timedSource) PrivateNetworks(ctx context.Context) ([]metadata.PrivateNetwork, error) {
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
	nets, err := s.src.PrivateNetworks(ctx)
	s.m.ObserveMetadata("private-networks", err)
	return nets, err
}

func (s *timedSource) since() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() {
		return 0
	}
	return time.Since(s.start)
}
