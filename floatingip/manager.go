package floatingip

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// ManagerOwner is the Host owner name of addresses the Manager configures.
const ManagerOwner = "manager"

// ManagerConfig configures the host configuration of floating IPs assigned
// to this server outside failover groups.
type ManagerConfig struct {
	// Self is this server's ID.
	Self int64
	// Selector limits the floating IPs to a label selector ("" is all).
	Selector string
	// IPv6Host is the interface ID within IPv6 /64s; default ::1.
	IPv6Host netip.Addr
	// Interval is the mean time between API reads (jittered ±20%); default
	// 20m: a few calls per hour per server.
	Interval time.Duration
	// Exclude skips floating IPs that a failover group manages.
	Exclude func(FloatingIP) bool
}

// Manager keeps every floating IP assigned to this server configured on the
// public NIC and removes those it added when they move away.
type Manager struct {
	cfg     ManagerConfig
	cloud   Cloud
	host    Host
	log     *slog.Logger
	trigger chan struct{}
}

// NewManager returns a manager; call Run.
func NewManager(cfg ManagerConfig, cloud Cloud, host Host, log *slog.Logger) *Manager {
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Minute
	}
	if !cfg.IPv6Host.IsValid() {
		cfg.IPv6Host = DefaultIPv6Host
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, cloud: cloud, host: host, log: log, trigger: make(chan struct{}, 1)}
}

// Trigger asks Run to sync soon (e.g. after a metadata change). It never
// blocks.
func (m *Manager) Trigger() {
	select {
	case m.trigger <- struct{}{}:
	default:
	}
}

// Sync reads the floating IPs once and configures those assigned here. A
// failed read changes nothing: it never means "nothing is assigned".
func (m *Manager) Sync(ctx context.Context) error {
	fips, err := m.cloud.ListFloatingIPs(ctx, m.cfg.Selector)
	if err != nil {
		return fmt.Errorf("sync floating ips: %w", err)
	}
	var ps []netip.Prefix
	for _, f := range fips {
		if f.ServerID != m.cfg.Self || (m.cfg.Exclude != nil && m.cfg.Exclude(f)) {
			continue
		}
		p, err := HostPrefix(f, m.cfg.IPv6Host)
		if err != nil {
			m.log.Warn("skip floating ip", "id", f.ID, "err", err)
			continue
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if err := m.host.Set(ctx, ManagerOwner, ps); err != nil {
		return fmt.Errorf("sync floating ips: %w", err)
	}
	return nil
}

// Run syncs at start, then every jittered interval and on Trigger, until
// ctx is done (then it returns nil). A failed sync is retried after a
// minute; the error is logged once until it changes.
func (m *Manager) Run(ctx context.Context) error {
	var lastErr string
	for {
		next := m.cfg.Interval*8/10 + rand.N(m.cfg.Interval*4/10+1)
		if err := m.Sync(ctx); err != nil {
			if err.Error() != lastErr {
				m.log.Warn("sync floating ips", "err", err)
			}
			lastErr = err.Error()
			next = min(next, time.Minute)
		} else {
			lastErr = ""
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-m.trigger:
			t.Stop()
		}
	}
}

// ServerStatusPeerCheck is a second path that asks the API for the peer
// server's status: "running" (or any state but off/deleted) is up — cut off
// from us, not dead — while "off" or a server that no longer exists is down.
// getStatus returns the status, or found=false for a deleted server.
func ServerStatusPeerCheck(getStatus func(ctx context.Context, serverID int64) (status string, found bool, err error)) PeerCheck {
	return func(ctx context.Context, id int64) (PeerState, error) {
		st, found, err := getStatus(ctx, id)
		switch {
		case err != nil:
			return PeerUnknown, fmt.Errorf("get server %d: %w", id, err)
		case !found, st == "off", st == "deleting":
			return PeerDown, nil
		default:
			return PeerUp, nil
		}
	}
}

// ProbePeerCheck is a second path that probes the peer's service over its
// public address: probeFor returns the probe for a peer; a failing probe
// means down.
func ProbePeerCheck(probeFor func(serverID int64) (Probe, error)) PeerCheck {
	return func(ctx context.Context, id int64) (PeerState, error) {
		p, err := probeFor(id)
		if err != nil {
			return PeerUnknown, err
		}
		if p(ctx) != nil {
			return PeerDown, nil
		}
		return PeerUp, nil
	}
}
