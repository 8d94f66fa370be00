package floatingip

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
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
	// IPv6Host is the interface ID within IPv6 /64s (config: ::1).
	IPv6Host netip.Addr
	// Interval is the mean time between API reads (jittered ±20%); config's
	// api.poll_interval, 20m by default: a few calls per hour per server.
	Interval time.Duration
	// RetryMin is the delay before the first retry of a failed sync; it
	// doubles with each further failure up to Interval (each jittered
	// ±20%), so that an API outage is not met with a burst of reads
	// (config.DefaultAPIRetryMin, 5s).
	RetryMin time.Duration
	// Exclude skips floating IPs that a failover group manages.
	Exclude func(FloatingIP) bool

	// OnSync, when set, is called after every sync whose API read
	// succeeded, once for each floating IP the manager knows (listed for
	// Selector and not excluded), with whether its address is configured
	// on this host and whether the API assigns it to this server. It runs
	// on the syncing goroutine and must not block.
	OnSync func(f FloatingIP, configured, assignedHere bool)
	// OnGone, when set, is called once for a floating IP that OnSync
	// reported and a later read no longer lists (deleted, relabelled out of
	// Selector, or now excluded). It runs like OnSync.
	OnGone func(f FloatingIP)
	// AfterSync, when set, is called after every sync with its duration
	// and its error (nil on success). It runs like OnSync.
	AfterSync func(d time.Duration, err error)

	// Share, when set, connects the Manager with this server's failover
	// groups (one reader per group, issue 14): while this server is in a
	// group, holds none and sees a holder that advertises its reads, the
	// Manager makes no periodic read (see ReadShare). Without it, or in
	// any other case, it reads every Interval.
	Share *ReadShare
	// OnMode, when set, is called by Run with the read mode at start and
	// whenever it or its reason changes. It runs on Run's goroutine and
	// must not block.
	OnMode func(mode ReadMode, why string)
}

// configuredHost is a Host that can tell which addresses it configured
// (netconf.FloatingIPApplier); the Manager then reports what the host says rather than what
// it asked for.
type configuredHost interface {
	Configured(ip netip.Addr) bool
}

// Manager keeps every floating IP assigned to this server configured on the
// public NIC and removes those it added when they move away.
type Manager struct {
	cfg     ManagerConfig
	cloud   Cloud
	host    Host
	log     *slog.Logger
	trigger chan struct{}

	syncMu sync.Mutex
	known  map[int64]FloatingIP // reported through OnSync, by ID
	// digest is the digest of the last successful list (zero before).
	digest ReadDigest
}

// NewManager returns a manager; call Run. It replaces no value: Interval
// and RetryMin must be positive (defaults live in package config).
func NewManager(cfg ManagerConfig, cloud Cloud, host Host, log *slog.Logger) (*Manager, error) {
	if cfg.Interval <= 0 || cfg.RetryMin <= 0 {
		return nil, fmt.Errorf("new floating ip manager: interval %v and retry %v must be positive", cfg.Interval, cfg.RetryMin)
	}
	cfg.RetryMin = min(cfg.RetryMin, cfg.Interval)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		cfg: cfg, cloud: cloud, host: host, log: log,
		trigger: make(chan struct{}, 1), known: map[int64]FloatingIP{},
	}, nil
}

// Trigger asks Run to sync now, whatever the interval or a retry delay say
// (e.g. after a metadata change). Each trigger costs an API read, so
// callers must not trigger periodically. It never blocks.
func (m *Manager) Trigger() {
	select {
	case m.trigger <- struct{}{}:
	default:
	}
}

// Sync reads the floating IPs once and configures those assigned here. A
// failed read changes nothing: it never means "nothing is assigned".
func (m *Manager) Sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	start := time.Now()
	err := m.sync(ctx)
	if m.cfg.AfterSync != nil {
		m.cfg.AfterSync(time.Since(start), err)
	}
	return err
}

// syncItem is one floating IP of a sync.
type syncItem struct {
	f FloatingIP
	// p is the address to configure; invalid when the API's data gave none.
	p    netip.Prefix
	here bool
}

func (m *Manager) sync(ctx context.Context) error {
	fips, err := m.cloud.ListFloatingIPs(ctx, m.cfg.Selector)
	if err != nil {
		return fmt.Errorf("sync floating ips: %w", err)
	}
	m.digest = digestOf(m.cfg.Selector, fips)
	if m.cfg.Share != nil {
		m.cfg.Share.setOwn(m.digest)
	}
	var items []syncItem
	var ps []netip.Prefix
	for _, f := range fips {
		if m.cfg.Exclude != nil && m.cfg.Exclude(f) {
			continue
		}
		it := syncItem{f: f, here: f.ServerID == m.cfg.Self}
		p, err := HostPrefix(f, m.cfg.IPv6Host)
		switch {
		case err != nil && it.here:
			m.log.Warn("skip floating ip", "id", f.ID, "err", err)
		case err != nil:
		case it.here:
			it.p = p
			ps = append(ps, p)
		default:
			it.p = p
		}
		items = append(items, it)
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	setErr := m.host.Set(ctx, ManagerOwner, ps)
	ch, canTell := m.host.(configuredHost)
	m.report(items, func(it syncItem) bool {
		if !it.p.IsValid() {
			return false
		}
		if canTell {
			return ch.Configured(it.p.Addr())
		}
		return it.here && setErr == nil
	})
	if setErr != nil {
		return fmt.Errorf("sync floating ips: %w", setErr)
	}
	return nil
}

// report calls OnSync for every floating IP of this sync and OnGone for
// those of earlier syncs that are missing now, in ID order.
func (m *Manager) report(items []syncItem, configured func(syncItem) bool) {
	seen := make(map[int64]bool, len(items))
	slices.SortFunc(items, func(a, b syncItem) int { return cmp.Compare(a.f.ID, b.f.ID) })
	for _, it := range items {
		seen[it.f.ID] = true
		m.known[it.f.ID] = it.f
		if m.cfg.OnSync != nil {
			m.cfg.OnSync(it.f, configured(it), it.here)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(m.known)) {
		if seen[id] {
			continue
		}
		if m.cfg.OnGone != nil {
			m.cfg.OnGone(m.known[id])
		}
		delete(m.known, id)
	}
}

// Run syncs at start, on Trigger and, in ReadModeReader, every jittered
// interval, until ctx is done (then it returns nil). In ReadModeFollower
// (see ManagerConfig.Share) it makes no periodic sync, but syncs once
// whenever a holder advertises a new digest that its own last read did not
// see. A failed sync is retried after RetryMin, doubling up to Interval
// (jittered), in either mode, so that an outage costs few API calls; the
// error is logged once until it changes.
func (m *Manager) Run(ctx context.Context) error {
	var changes <-chan struct{}
	if m.cfg.Share != nil {
		changes = m.cfg.Share.changes
	}
	var lastErr string
	failures := 0
	// next is when the next periodic (or retry) sync is due.
	var next time.Time
	mode, why := ReadMode(""), ""
	var fol follower
	timer := time.NewTimer(0)
	timer.Stop()
	defer timer.Stop()
	read := true
	for {
		if read {
			err := m.Sync(ctx)
			if ctx.Err() != nil {
				return nil
			}
			switch {
			case err != nil:
				if err.Error() != lastErr {
					m.log.Warn("sync floating ips", "err", err)
				}
				lastErr = err.Error()
				failures++
			case lastErr != "":
				m.log.Info("floating ips synced again", "failures", failures)
				lastErr, failures = "", 0
			}
			next = time.Now().Add(m.nextDelay(failures))
		}
		read = false

		newMode, newWhy, follow := m.readMode()
		if newMode != mode || newWhy != why {
			if mode == ReadModeFollower && failures == 0 {
				// Until now the holder read for us: the next periodic
				// read is one interval away, not overdue (a failover
				// would make every standby read at once otherwise).
				next = time.Now().Add(m.nextDelay(0))
			}
			m.logMode(mode, newMode, newWhy, follow)
			mode, why = newMode, newWhy
			if m.cfg.OnMode != nil {
				m.cfg.OnMode(mode, why)
			}
		}
		if mode == ReadModeFollower && fol.due(follow, m.ownDigest()) {
			read = true
			continue
		}

		timer.Stop()
		if mode == ReadModeReader || failures > 0 {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			read = true
		case <-m.trigger:
			read = true
		case <-changes:
		}
	}
}

// readMode decides the read mode from the groups' current view.
func (m *Manager) readMode() (ReadMode, string, []holderAdvert) {
	if m.cfg.Share == nil {
		return ReadModeReader, readWhyNoGroup, nil
	}
	return decideRead(m.cfg.Share.view(), selectorHash(m.cfg.Selector))
}

func (m *Manager) ownDigest() ReadDigest {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	return m.digest
}

// logMode logs a change of the read mode at info: a state transition, not
// a tick (the view changes only with the groups' membership).
func (m *Manager) logMode(from, to ReadMode, why string, follow []holderAdvert) {
	switch {
	case from == "" && why == readWhyNoGroup:
		// The usual start of a server without groups: nothing to say.
	case to == ReadModeFollower:
		ids := make([]int64, 0, len(follow))
		for _, h := range follow {
			ids = append(ids, h.id)
		}
		m.log.Info("floating ip reads follow the group holder", "holders", ids)
	default:
		m.log.Info("floating ip reads every poll interval", "reason", why)
	}
}

// nextDelay is the time until the next sync after failures consecutive
// failed ones: the interval, or RetryMin·2^(failures-1) capped at the
// interval; both jittered ±20% so that servers restarted together spread
// out their reads.
func (m *Manager) nextDelay(failures int) time.Duration {
	d := m.cfg.Interval
	if failures > 0 {
		d = m.cfg.RetryMin
		for i := 1; i < failures && d < m.cfg.Interval; i++ {
			d *= 2
		}
		d = min(d, m.cfg.Interval)
	}
	return jittered(d)
}

// jittered returns a uniformly random duration within ±20% of d.
func jittered(d time.Duration) time.Duration {
	return d*8/10 + rand.N(d*4/10+1)
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
