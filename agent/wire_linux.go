package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

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

// System says where the agent acts. The zero value is the host: the current
// network namespace.
type System struct {
	// Netns, when set, makes netlink work in that namespace (tests create
	// one). The metadata and API clients still dial from the current one.
	Netns *netns.NsHandle
	// FloatingIPHost configures floating IP addresses on the public NIC.
	// When nil and floating_ips are enabled, Wire uses a floatingip.Applier
	// over its netlink handle (in Netns when set), recording what it added in
	// state_dir/floatingip-owned.json. Failover groups start only when a host
	// is available.
	FloatingIPHost floatingip.Host
}

// Wire returns the production dependencies for cfg: the metadata client and
// the private network reconciler over netlink. close releases the netlink
// handle once Run returned.
func Wire(cfg config.Config, log *slog.Logger, build metrics.BuildInfo, sys System) (deps Deps, close func(), err error) {
	var h *netlink.Handle
	if sys.Netns != nil {
		h, err = netlink.NewHandleAt(*sys.Netns)
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return Deps{}, nil, fmt.Errorf("open netlink handle: %w", err)
	}
	md := metadata.New(
		metadata.WithEndpoint(orDefault(cfg.Metadata.Endpoint, metadata.DefaultEndpoint)),
		metadata.WithTimeout(cfg.Metadata.Timeout),
		metadata.WithAttempts(cfg.Metadata.Attempts),
		metadata.WithLogger(log),
	)
	deps = Deps{
		Log:        log,
		Build:      build,
		Metadata:   md,
		NewNetconf: netconfFactory(h, md, sys),
	}
	host := sys.FloatingIPHost
	if host == nil && cfg.FloatingIPs.IsEnabled() {
		a, err := floatingip.NewApplier(h, floatingIPOwnedPath(cfg), log.With("component", ComponentFloatingIP))
		if err != nil {
			h.Close()
			return Deps{}, nil, fmt.Errorf("wire floating ips: %w", err)
		}
		host = a
	}
	if host != nil && cfg.FloatingIPs.IsEnabled() {
		deps.NewFloatingIP = floatingIPFactory(host)
	}
	if host != nil {
		deps.NewGroups = GroupsFactory(GroupWiring{
			Host:            host,
			NewMembership:   NewGossip,
			PrivateNetworks: md,
			PrivateHost:     netconf.NewPrivateVIPs(h),
			Egress:          netconf.NewEgressController(h, cfg.EgressGroups(), log.With("component", "egress")),
		})
	}
	return deps, h.Close, nil
}

// NewGossip is GroupWiring.NewMembership for production: memberlist over
// the private network, encrypted with the group's key file (config
// validation refuses a memberlist group without one unless insecure).
func NewGossip(g config.Group, self int64, bind string, peers []string, log *slog.Logger, m *metrics.Metrics) (floatingip.Membership, error) {
	var key []byte
	if g.KeyFile != "" {
		k, err := floatingip.LoadKeyFile(g.KeyFile)
		if err != nil {
			return nil, err
		}
		key = k
	}
	return floatingip.NewGossip(floatingip.GossipConfig{
		Group:    g.Name,
		Self:     self,
		Bind:     bind,
		Port:     g.Port,
		Peers:    peers,
		Key:      key,
		Insecure: g.Insecure,
		Log:      log,
		// A peer with another key shows in a counter; the log gets one
		// warning per peer.
		DecryptFailed: func() { m.IncGossipDecryptError(g.Name) },
	})
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func netconfFactory(h *netlink.Handle, md netconf.Source, sys System) func(context.Context, Env) (Component, error) {
	return func(_ context.Context, env Env) (Component, error) {
		src := &timedSource{src: md, m: env.Metrics}
		opts := []netconf.ReconcilerOption{
			netconf.WithOwnedFile(filepath.Join(env.StateDir, OwnedFile)),
			netconf.WithOnReconcile(func(res netconf.Result, err error) {
				env.Report(Report{
					Component:  ComponentNetconf,
					Duration:   src.since(),
					Changes:    res.Writes,
					Blackholed: res.MetadataBlackholed,
					Err:        err,
				})
			}),
		}
		if sys.Netns != nil {
			opts = append(opts, netconf.WithNetns(*sys.Netns))
		}
		return netconf.New(NetconfOptions(env.Config), src, h, env.Log.With("component", ComponentNetconf), opts...), nil
	}
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

// RunDaemon is `hc-agent run`: it wires the production dependencies for cfg
// (already checked), runs the agent until ctx is done and releases them.
// It talks to the real metadata service and acts on this host's network:
// tests must point cfg.Metadata.Endpoint at a fake and use System.Netns.
func RunDaemon(ctx context.Context, cfg config.Config, log *slog.Logger, build metrics.BuildInfo, sys System) error {
	deps, closeDeps, err := Wire(cfg, log, build, sys)
	if err != nil {
		return fmt.Errorf("run agent: %w", err)
	}
	defer closeDeps()
	a, err := New(cfg, deps)
	if err != nil {
		return fmt.Errorf("run agent: %w", err)
	}
	return a.Run(ctx)
}
