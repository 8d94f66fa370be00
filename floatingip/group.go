package floatingip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// LocalState is what this member advertises to its peers.
type LocalState struct {
	// Ready is false until the member has read the API and knows its role;
	// peers then treat it as starting.
	Ready     bool
	Priority  int
	Healthy   bool
	Candidate bool
	Holding   bool
}

// Membership is the failure detector of a group as the group uses it.
// *Gossip (memberlist) implements it; tests use an in-memory fake.
type Membership interface {
	// Members returns the members currently alive (including self) with
	// the state they advertise, plus members that left gracefully (Left
	// set, Alive false). Dead members are absent.
	Members() []Member
	// SetLocal changes what this member advertises.
	SetLocal(LocalState) error
	// Changes is signalled (coalesced) whenever Members may have changed.
	Changes() <-chan struct{}
	// Leave leaves the group gracefully so peers do not wait for failure
	// detection, and stops the membership.
	Leave(ctx context.Context) error
}

// PeerCheck is the second path of a group of two: it tells whether the peer
// server is down, when gossip no longer sees it.
type PeerCheck func(ctx context.Context, peerID int64) (PeerState, error)

// GroupConfig configures a failover group. Zero values take the defaults
// noted per field.
type GroupConfig struct {
	Name string
	// Self is this server's ID (metadata instance-id).
	Self int64
	// Priority is this member's priority; default 100.
	Priority int
	// FloatingIPs are names or IDs; FloatingIPSelector a label selector.
	// At least one of them must be set.
	FloatingIPs        []string
	FloatingIPSelector string
	// ExpectedSize is the number of members including self (configured or
	// discovered peers plus one); default 1. A larger number of members seen
	// raises it.
	ExpectedSize int
	// Mode is "memberlist" (default) or "keepalived".
	Mode string
	// Preempt moves the floating IPs back to a better member once it has
	// been eligible for PreemptDelay. Unlike the other durations, a zero
	// PreemptDelay is not replaced: it preempts at once, as the config
	// file's preempt_delay: 0 says (the file's default is 30s).
	Preempt      bool
	PreemptDelay time.Duration
	// MaxMovesPerMinute caps attempts to take the floating IPs; default 3.
	MaxMovesPerMinute int
	// Backoff is how long a member waits after losing the floating IPs or
	// a failed move before trying again; default 10s. The first retry after
	// a move that failed on an error (nobody else took the floating IPs) comes
	// sooner, after min(Backoff, 1s): a failed action is usually transient
	// and the group is down meanwhile. MaxMovesPerMinute still applies.
	Backoff time.Duration
	// ActionTimeout bounds waiting for an assign action; default 30s.
	ActionTimeout time.Duration
	// RefreshInterval is the mean period of re-reading the floating IPs from
	// the API (jittered ±20%); default 5m.
	RefreshInterval time.Duration
	// SecondPathTTL is how long a second-path answer is reused; default 10s.
	SecondPathTTL time.Duration
	// StartupDelay is how long a starting member does not take the
	// floating IPs on a view that may only lack news: the holder by the API
	// has not been seen since start (it may not have joined yet) and not
	// every expected member has published its state; default 3s. It never
	// delays a decision on what the member saw: once the holder was seen,
	// its death, leave or failed health check is acted on at once. A holder
	// by the API keeps its floating IPs meanwhile (agent restart).
	StartupDelay time.Duration
	// HandoverTimeout bounds Handover when ctx has no deadline; default 10s.
	HandoverTimeout time.Duration
	// IPv6Host is the interface ID configured within IPv6 /64s; default ::1.
	IPv6Host netip.Addr
	Health   HealthConfig
}

func (c GroupConfig) withDefaults() GroupConfig {
	if c.Priority == 0 {
		c.Priority = 100
	}
	if c.ExpectedSize < 1 {
		c.ExpectedSize = 1
	}
	if c.Mode == "" {
		c.Mode = "memberlist"
	}
	if c.MaxMovesPerMinute <= 0 {
		c.MaxMovesPerMinute = 3
	}
	if c.Backoff <= 0 {
		c.Backoff = 10 * time.Second
	}
	if c.ActionTimeout <= 0 {
		c.ActionTimeout = 30 * time.Second
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = 5 * time.Minute
	}
	if c.SecondPathTTL <= 0 {
		c.SecondPathTTL = 10 * time.Second
	}
	if c.StartupDelay == 0 {
		c.StartupDelay = 3 * time.Second
	}
	if c.HandoverTimeout <= 0 {
		c.HandoverTimeout = 10 * time.Second
	}
	if !c.IPv6Host.IsValid() {
		c.IPv6Host = DefaultIPv6Host
	}
	return c
}

// GroupDeps are the collaborators of a group.
type GroupDeps struct {
	Cloud Cloud // required
	Host  Host  // required
	// Membership is required in memberlist mode.
	Membership Membership
	// Notify carries keepalived notify_fifo events in keepalived mode (see
	// ReadNotifyFIFO).
	Notify <-chan NotifyEvent
	// Probe overrides the probe built from GroupConfig.Health.
	Probe Probe
	// PeerCheck is the second path for groups of two; nil disables it.
	PeerCheck PeerCheck
	// Urgent marks the context of failover API calls (cloudapi.WithUrgent).
	Urgent func(context.Context) context.Context
	Hooks  Hooks
	Log    *slog.Logger
}

// Group runs one failover group. Create it with NewGroup, run it with Run.
type Group struct {
	cfg    GroupConfig
	deps   GroupDeps
	log    *slog.Logger
	health *HealthChecker
	owner  string

	startedAt  time.Time
	healthCh   chan bool
	handoverCh chan chan error
	refreshCh  chan struct{}

	mu            sync.Mutex
	running       bool
	fips          []FloatingIP // as last read from the API
	apiReadAt     time.Time
	knownHolder   int64 // by API or newer gossip claim
	holding       bool  // addresses configured here and claimed
	configured    bool
	draining      bool
	master        bool // keepalived mode: last state was MASTER
	role          Role
	healthy       bool
	seen          map[int64]Member
	decision      Decision
	lastMove      *MoveRecord
	moves         []time.Time
	failedMoves   int // consecutive moves that ended in "error"
	backoffUntil  time.Time
	peerState     PeerState
	peerStateAt   time.Time
	peerStateFor  int64
	handoverDones []chan error
}

// NewGroup validates cfg and deps and returns a group ready to Run.
func NewGroup(cfg GroupConfig, deps GroupDeps) (*Group, error) {
	cfg = cfg.withDefaults()
	if cfg.Name == "" {
		return nil, errors.New("new group: empty name")
	}
	if cfg.Self == 0 {
		return nil, fmt.Errorf("new group %s: unknown server id", cfg.Name)
	}
	if len(cfg.FloatingIPs) == 0 && cfg.FloatingIPSelector == "" {
		return nil, fmt.Errorf("new group %s: no floating ips", cfg.Name)
	}
	if deps.Cloud == nil || deps.Host == nil {
		return nil, fmt.Errorf("new group %s: cloud and host are required", cfg.Name)
	}
	switch cfg.Mode {
	case "memberlist":
		if deps.Membership == nil {
			return nil, fmt.Errorf("new group %s: memberlist mode without membership", cfg.Name)
		}
	case "keepalived":
		if deps.Notify == nil {
			return nil, fmt.Errorf("new group %s: keepalived mode without notify events", cfg.Name)
		}
	default:
		return nil, fmt.Errorf("new group %s: unknown mode %q", cfg.Name, cfg.Mode)
	}
	probe := deps.Probe
	if probe == nil {
		var err error
		if probe, err = NewProbe(cfg.Health); err != nil {
			return nil, fmt.Errorf("new group %s: %w", cfg.Name, err)
		}
	}
	if deps.Urgent == nil {
		deps.Urgent = func(ctx context.Context) context.Context { return ctx }
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{
		cfg:        cfg,
		deps:       deps,
		log:        log.With("group", cfg.Name),
		health:     NewHealthChecker(probe, cfg.Health),
		owner:      "group:" + cfg.Name,
		healthCh:   make(chan bool, 1),
		handoverCh: make(chan chan error),
		refreshCh:  make(chan struct{}, 1),
		seen:       map[int64]Member{},
		role:       RoleStandby,
	}, nil
}

// Name returns the group's name.
func (g *Group) Name() string { return g.cfg.Name }

// Refresh asks Run to re-read the floating IPs from the API soon. It never
// blocks.
func (g *Group) Refresh() {
	select {
	case g.refreshCh <- struct{}{}:
	default:
	}
}

// Run runs the group until ctx is done: it probes health, reads who holds
// the floating IPs, follows membership (or keepalived) and takes or gives up
// the floating IPs. A restarted holder that finds the floating IPs assigned
// to itself keeps them without a move. On return it leaves the membership
// gracefully so that peers take over at once; call Handover before
// cancelling ctx for a planned shutdown without outage. Run returns nil
// when ctx is done; the health goroutine it starts exits before Run returns.
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return fmt.Errorf("run group %s: already running", g.cfg.Name)
	}
	g.running = true
	g.startedAt = time.Now()
	// What a previous run saw is stale: the startup rule relies on seen
	// holding only members observed in this run.
	g.seen = map[int64]Member{}
	g.mu.Unlock()

	// The first probe decides the initial health, before peers see us.
	healthy, _ := g.health.Check(ctx)
	g.setHealthy(healthy)
	hctx, hcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // exits when Run returns (hcancel)
		defer wg.Done()
		g.health.Run(hctx, func(h bool) {
			select {
			case g.healthCh <- h:
			default:
				// Coalesce: drop the stale value, keep the newest.
				select {
				case <-g.healthCh:
				default:
				}
				g.healthCh <- h
			}
		})
	}()
	defer func() {
		hcancel()
		wg.Wait()
		g.mu.Lock()
		g.running = false
		for _, d := range g.handoverDones {
			d <- nil // Handover reports whether we still hold
		}
		g.handoverDones = nil
		g.mu.Unlock()
	}()

	// Read the floating IPs until it works: without them nothing is safe.
	for attempt := 0; ; attempt++ {
		err := g.refresh(ctx, false)
		if err == nil {
			break
		}
		g.log.Warn("read floating ips", "err", err)
		select {
		case <-ctx.Done():
			return g.shutdown()
		case <-time.After(min(time.Second<<min(attempt, 5), 30*time.Second)):
		}
	}
	g.adoptOrClean(ctx)

	if g.cfg.Mode == "keepalived" {
		return g.runKeepalived(ctx)
	}
	g.publish()

	refresh := time.NewTimer(g.jitter(g.cfg.RefreshInterval))
	defer refresh.Stop()
	// The tick re-evaluates time-based conditions (preemption delay,
	// second-path reuse); wake fires exactly when a backoff or the startup
	// hold ends, so that neither adds up to a tick to a failover.
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		g.evaluate(ctx)
		if d, ok := g.nextWake(time.Now()); ok {
			wake.Reset(d)
		} else {
			wake.Stop()
		}
		select {
		case <-ctx.Done():
			return g.shutdown()
		case <-wake.C:
		case <-g.deps.Membership.Changes():
		case h := <-g.healthCh:
			g.setHealthy(h)
			g.publish()
		case done := <-g.handoverCh:
			g.startHandover(done)
		case <-tick.C:
		case <-g.refreshCh:
			g.periodicRefresh(ctx, refresh)
		case <-refresh.C:
			g.periodicRefresh(ctx, refresh)
		}
	}
}

// nextWake returns how long until the earliest of the backoff end and the
// startup hold end, if one of them lies ahead.
func (g *Group) nextWake(now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next time.Time
	for _, t := range []time.Time{g.backoffUntil, g.startedAt.Add(g.cfg.StartupDelay)} {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		return 0, false
	}
	return next.Sub(now), true
}

func (g *Group) periodicRefresh(ctx context.Context, t *time.Timer) {
	if err := g.refresh(ctx, false); err != nil {
		g.log.Warn("refresh floating ips", "err", err)
	}
	t.Reset(g.jitter(g.cfg.RefreshInterval))
}

// jitter returns d ±20%.
func (g *Group) jitter(d time.Duration) time.Duration {
	return d*8/10 + rand.N(d*4/10+1)
}

func (g *Group) setHealthy(h bool) {
	g.mu.Lock()
	changed := g.healthy != h
	g.healthy = h
	g.mu.Unlock()
	if changed {
		g.log.Info("health changed", "healthy", h, "err", g.health.LastError())
	}
}

// shutdown leaves the membership; a holder that did not hand over keeps its
// addresses (peers take over after the leave; a restart reconciles).
func (g *Group) shutdown() error {
	if g.deps.Membership != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := g.deps.Membership.Leave(ctx); err != nil {
			g.log.Warn("leave group", "err", err)
		}
	}
	return nil
}

// refresh reads the floating IPs from the API and updates the known holder.
// A holder that finds another server holding steps down.
func (g *Group) refresh(ctx context.Context, urgent bool) error {
	if urgent {
		ctx = g.deps.Urgent(ctx)
	}
	var fips []FloatingIP
	var errs []error
	for _, ref := range g.cfg.FloatingIPs {
		f, err := g.deps.Cloud.GetFloatingIP(ctx, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("get floating ip %s: %w", ref, err))
			continue
		}
		fips = append(fips, f)
	}
	if g.cfg.FloatingIPSelector != "" {
		list, err := g.deps.Cloud.ListFloatingIPs(ctx, g.cfg.FloatingIPSelector)
		if err != nil {
			errs = append(errs, fmt.Errorf("list floating ips %q: %w", g.cfg.FloatingIPSelector, err))
		}
		for _, f := range list {
			if !slices.ContainsFunc(fips, func(x FloatingIP) bool { return x.ID == f.ID }) {
				fips = append(fips, f)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(fips) == 0 {
		return fmt.Errorf("group %s: no floating ips found", g.cfg.Name)
	}
	slices.SortFunc(fips, func(a, b FloatingIP) int { return int(a.ID - b.ID) })
	g.mu.Lock()
	g.fips = fips
	g.apiReadAt = time.Now()
	g.knownHolder = holderOf(fips, g.cfg.Self)
	lost := g.holding && g.knownHolder != g.cfg.Self
	g.mu.Unlock()
	for _, f := range fips {
		g.hookFIP(f)
	}
	if lost {
		g.stepDown(ctx, "api shows another holder")
	}
	return nil
}

// holderOf returns the server holding the floating IPs: self only if self
// holds all of them, else the holder of the first assigned one.
func holderOf(fips []FloatingIP, self int64) int64 {
	all := true
	var first int64
	for _, f := range fips {
		if f.ServerID != self {
			all = false
		}
		if first == 0 && f.ServerID != 0 && f.ServerID != self {
			first = f.ServerID
		}
	}
	if all && len(fips) > 0 {
		return self
	}
	return first
}

// adoptOrClean runs once at start: a holder by the API configures its
// addresses and claims them (restart without a move); others remove any
// address the group left behind.
func (g *Group) adoptOrClean(ctx context.Context) {
	g.mu.Lock()
	mine := g.knownHolder == g.cfg.Self
	g.mu.Unlock()
	if mine {
		if err := g.configure(ctx); err != nil {
			g.log.Error("configure floating ips", "err", err)
			return
		}
		g.mu.Lock()
		g.holding = true
		g.mu.Unlock()
		g.setRole(RoleHolder)
		g.log.Info("holding floating ips by api at start")
		return
	}
	if err := g.unconfigure(ctx); err != nil {
		g.log.Error("remove floating ips", "err", err)
	}
}

func (g *Group) prefixes() ([]netip.Prefix, error) {
	g.mu.Lock()
	fips := slices.Clone(g.fips)
	g.mu.Unlock()
	var ps []netip.Prefix
	for _, f := range fips {
		p, err := HostPrefix(f, g.cfg.IPv6Host)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (g *Group) configure(ctx context.Context) error {
	ps, err := g.prefixes()
	if err != nil {
		return err
	}
	if err := g.deps.Host.Set(ctx, g.owner, ps); err != nil {
		return err
	}
	g.setConfigured(true)
	return nil
}

func (g *Group) unconfigure(ctx context.Context) error {
	if err := g.deps.Host.Set(ctx, g.owner, nil); err != nil {
		return err
	}
	g.setConfigured(false)
	return nil
}

func (g *Group) setConfigured(c bool) {
	g.mu.Lock()
	changed := g.configured != c
	g.configured = c
	fips := slices.Clone(g.fips)
	g.mu.Unlock()
	if changed {
		for _, f := range fips {
			g.hookFIP(f)
		}
	}
}

func (g *Group) hookFIP(f FloatingIP) {
	if g.deps.Hooks.FIPChanged == nil {
		return
	}
	g.mu.Lock()
	configured, assigned := g.configured, f.ServerID == g.cfg.Self
	g.mu.Unlock()
	g.deps.Hooks.FIPChanged(g.cfg.Name, f, configured, assigned)
}

func (g *Group) setRole(r Role) {
	g.mu.Lock()
	changed := g.role != r
	g.role = r
	g.mu.Unlock()
	if changed {
		g.log.Info("role changed", "role", string(r))
		if g.deps.Hooks.RoleChanged != nil {
			g.deps.Hooks.RoleChanged(g.cfg.Name, r)
		}
	}
}

// publish advertises the local state to the peers.
func (g *Group) publish() {
	if g.deps.Membership == nil {
		return
	}
	g.mu.Lock()
	st := LocalState{Ready: true, Priority: g.cfg.Priority, Healthy: g.healthy, Candidate: !g.draining, Holding: g.holding}
	g.mu.Unlock()
	if err := g.deps.Membership.SetLocal(st); err != nil {
		g.log.Warn("advertise local state", "err", err)
	}
}

// view builds the decision view from membership and the known holder.
func (g *Group) view(now time.Time) View {
	ms := g.deps.Membership.Members()
	g.mu.Lock()
	defer g.mu.Unlock()
	alive := map[int64]bool{}
	left := 0
	for _, m := range ms {
		if m.Left {
			if m.ID != g.cfg.Self {
				left++
				m.Alive, m.Holding, m.Since = false, false, time.Time{}
				g.seen[m.ID] = m
			}
			continue
		}
		alive[m.ID] = true
		prev, ok := g.seen[m.ID]
		m.Alive = true
		if m.ID == g.cfg.Self {
			// Our own state is authoritative here, gossip may lag.
			m.Healthy, m.Candidate, m.Holding, m.Priority = g.healthy, !g.draining, g.holding, g.cfg.Priority
			m.Starting = false
		}
		m.Since = prev.Since
		if !m.eligible() {
			m.Since = time.Time{}
		} else if !ok || !prev.eligible() || prev.Since.IsZero() {
			m.Since = now
		}
		// A newly seen claim by another member is newer news than our
		// last API read: follow it without an API call.
		if m.Holding && m.ID != g.cfg.Self && (!ok || !prev.Holding || !prev.Alive) {
			g.knownHolder = m.ID
		}
		g.seen[m.ID] = m
	}
	if !alive[g.cfg.Self] {
		m := Member{ID: g.cfg.Self, Priority: g.cfg.Priority, Alive: true, Healthy: g.healthy, Candidate: !g.draining, Holding: g.holding}
		g.seen[g.cfg.Self] = m
	}
	v := View{
		Self:   g.cfg.Self,
		Holder: g.knownHolder,
		// A member that left gracefully said it is not cut off but gone:
		// it no longer counts towards the majority.
		ExpectedSize: max(max(g.cfg.ExpectedSize, len(g.seen))-left, 1),
		Preempt:      g.cfg.Preempt,
		PreemptDelay: g.cfg.PreemptDelay,
		Now:          now,
		Peer:         PeerUnknown,
	}
	for id, m := range g.seen {
		if !alive[id] && id != g.cfg.Self && !m.Left {
			m.Alive, m.Holding, m.Since = false, false, time.Time{}
			g.seen[id] = m
		}
		v.Members = append(v.Members, m)
	}
	sortMembers(v.Members)
	return v
}

// peerOf returns the peer of a group of two, or 0 if unknown.
func (g *Group) peerOf(v View) int64 {
	for _, m := range v.Members {
		if m.ID != v.Self {
			return m.ID
		}
	}
	if v.Holder != v.Self {
		return v.Holder
	}
	return 0
}

func (g *Group) evaluate(ctx context.Context) {
	now := time.Now()
	v := g.view(now)
	alive, healthy := 0, 0
	for _, m := range v.Members {
		if m.Alive {
			alive++
			if m.Healthy {
				healthy++
			}
		}
	}
	if g.deps.Hooks.MembersChanged != nil {
		g.deps.Hooks.MembersChanged(g.cfg.Name, alive, healthy)
	}
	if v.ExpectedSize == 2 && alive == 1 && g.deps.PeerCheck != nil {
		v.Peer = g.secondPath(ctx, g.peerOf(v), now)
	}
	d := Decide(v)

	g.mu.Lock()
	if d != g.decision {
		g.log.Debug("decision", "leader", d.Leader, "quorum", d.Quorum, "reason", d.Reason)
	}
	g.decision = d
	holding, draining, holder := g.holding, g.draining, g.knownHolder
	backoff := now.Before(g.backoffUntil) || g.startupHoldLocked(v, now)
	g.mu.Unlock()

	switch {
	case holding && holder != g.cfg.Self:
		// Claims can cross (two winners of a race each see the other's
		// claim): the API decides who steps down. refresh steps down if
		// another server holds them.
		if err := g.refresh(ctx, true); err != nil {
			g.log.Warn("verify claim", "err", err)
			g.mu.Lock()
			g.knownHolder = g.cfg.Self // keep serving until the API answers
			g.mu.Unlock()
		} else {
			g.publish()
		}
	case holding && draining:
		// Wait for a peer to claim; see startHandover. If the last peer
		// that could take over died or failed meanwhile, waiting would
		// only delay the shutdown by the whole timeout.
		if !hasEligiblePeer(v) {
			g.abortHandover(ErrNoPeer)
		}
	case holding:
		g.setRole(RoleHolder)
	case draining:
		g.setRole(RoleSteppingDown)
		g.finishHandover()
	case d.Take(g.cfg.Self) && !backoff:
		g.setRole(RoleCandidate)
		g.take(ctx, urgentReason(d.Reason))
	default:
		g.setRole(RoleStandby)
	}
	if draining {
		g.mu.Lock()
		done := !g.holding || g.knownHolder != g.cfg.Self
		g.mu.Unlock()
		if done {
			g.finishHandover()
		}
	}
}

func urgentReason(r string) string { return r }

// startupHoldLocked reports whether a starting member must not take the
// floating IPs yet because its view may only lack news. Right after start
// memberlist may not have joined every peer: a holder that is not seen looks
// dead. So within StartupDelay a member acts only on what it observed: the
// holder was seen in this run (alive, or leaving) and failure detection,
// a leave or the holder's own health report says it is no longer eligible
// (a crash right after a restart must not wait for the delay to run out);
// or every expected member has published its state, so the view is
// complete. g.mu must be held.
func (g *Group) startupHoldLocked(v View, now time.Time) bool {
	if now.Sub(g.startedAt) >= g.cfg.StartupDelay {
		return false
	}
	if v.Holder != 0 && v.Holder != v.Self {
		if _, seen := g.seen[v.Holder]; seen {
			return false
		}
	}
	published := 0
	for _, m := range v.Members {
		if m.Alive && !m.Starting {
			published++
		}
	}
	return published < v.ExpectedSize
}

func (g *Group) secondPath(ctx context.Context, peer int64, now time.Time) PeerState {
	if peer == 0 {
		return PeerUnknown
	}
	g.mu.Lock()
	if g.peerStateFor == peer && now.Sub(g.peerStateAt) < g.cfg.SecondPathTTL {
		s := g.peerState
		g.mu.Unlock()
		return s
	}
	g.mu.Unlock()
	cctx, cancel := context.WithTimeout(g.deps.Urgent(ctx), 5*time.Second)
	s, err := g.deps.PeerCheck(cctx, peer)
	cancel()
	if err != nil {
		g.log.Warn("second path", "peer", peer, "err", err)
		s = PeerUnknown
	}
	g.mu.Lock()
	if s != g.peerState || peer != g.peerStateFor {
		g.log.Info("second path", "peer", peer, "state", s.String())
	}
	g.peerState, g.peerStateAt, g.peerStateFor = s, time.Now(), peer
	g.mu.Unlock()
	return s
}

// movesAllowed prunes the move window and reports whether another attempt
// fits under the cap.
func (g *Group) movesAllowed(now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.moves = slices.DeleteFunc(g.moves, func(t time.Time) bool { return now.Sub(t) >= time.Minute })
	return len(g.moves) < g.cfg.MaxMovesPerMinute
}

// failedMoveRetry is the wait before the first retry of a move that failed
// on an error; see GroupConfig.Backoff.
const failedMoveRetry = time.Second

// take runs the failover flow: configure locally first (fast path), read
// the holder from the API, assign, wait for the action and verify. On any
// failure it removes the addresses and backs off.
func (g *Group) take(ctx context.Context, reason string) {
	start := time.Now()
	if !g.movesAllowed(start) {
		g.log.Warn("move cap reached", "max_per_minute", g.cfg.MaxMovesPerMinute)
		g.mu.Lock()
		// The next attempt fits once the oldest leaves the window.
		g.backoffUntil = g.moves[0].Add(time.Minute)
		g.mu.Unlock()
		return
	}
	g.mu.Lock()
	g.moves = append(g.moves, start)
	from := g.knownHolder
	g.mu.Unlock()
	rec := MoveRecord{At: start, From: from, To: g.cfg.Self}
	g.log.Info("taking floating ips", "from", from, "reason", reason)

	result, err := g.takeSteps(ctx)
	rec.Duration = time.Since(start)
	rec.Result = result
	if err != nil {
		rec.Error = err.Error()
	}
	g.mu.Lock()
	if result == "success" {
		g.holding = true
		g.knownHolder = g.cfg.Self
	} else {
		wait := g.cfg.Backoff
		if result == "error" && g.failedMoves == 0 {
			wait = min(wait, failedMoveRetry)
		}
		g.backoffUntil = time.Now().Add(wait)
	}
	if result == "error" {
		g.failedMoves++
	} else {
		g.failedMoves = 0
	}
	if result != "aborted" {
		r := rec
		g.lastMove = &r
	}
	g.mu.Unlock()

	if result == "success" {
		g.setRole(RoleHolder)
		g.publish()
		g.log.Info("took floating ips", "from", from, "duration", rec.Duration)
	} else {
		if uerr := g.unconfigure(ctx); uerr != nil {
			g.log.Error("remove floating ips", "err", uerr)
		}
		g.setRole(RoleStandby)
		g.log.Warn("move failed", "result", result, "err", err)
	}
	if result != "aborted" && g.deps.Hooks.Moved != nil {
		g.deps.Hooks.Moved(g.cfg.Name, rec)
	}
}

func (g *Group) takeSteps(ctx context.Context) (string, error) {
	if err := g.configure(ctx); err != nil {
		return "error", fmt.Errorf("configure: %w", err)
	}
	// The API is the arbiter: re-read before assigning.
	if err := g.refresh(ctx, true); err != nil {
		return "error", err
	}
	if g.cfg.Mode != "keepalived" {
		v := g.view(time.Now())
		if v.ExpectedSize == 2 && g.deps.PeerCheck != nil {
			g.mu.Lock()
			v.Peer = g.peerState
			g.mu.Unlock()
		}
		if d := Decide(v); !d.Take(g.cfg.Self) && v.Holder != g.cfg.Self {
			return "aborted", fmt.Errorf("fresh read: %s", d.Reason)
		}
	}
	g.mu.Lock()
	fips := slices.Clone(g.fips)
	before := g.knownHolder
	g.mu.Unlock()
	uctx := g.deps.Urgent(ctx)
	var errs []error
	// callFailed: an assign call or the wait for it failed. The API may
	// have refused because another member's action runs (locked), so
	// only failed actions (they ran and ended in "error") count as our
	// own failure below.
	callFailed := false
	for _, f := range fips {
		if f.ServerID == g.cfg.Self {
			continue
		}
		a, err := g.deps.Cloud.Assign(uctx, f.ID, g.cfg.Self)
		if err != nil {
			errs = append(errs, fmt.Errorf("assign floating ip %d: %w", f.ID, err))
			callFailed = true
			continue
		}
		wctx, cancel := context.WithTimeout(uctx, g.cfg.ActionTimeout)
		a, err = g.deps.Cloud.WaitAction(wctx, a.ID)
		cancel()
		switch {
		case a.Status == "error":
			// The action ran and failed; cloudapi also returns an error
			// for it.
			errs = append(errs, fmt.Errorf("action %d: %s %s", a.ID, a.Status, a.Error))
		case err != nil:
			errs = append(errs, fmt.Errorf("wait action %d: %w", a.ID, err))
			callFailed = true
		case a.Status != "success":
			errs = append(errs, fmt.Errorf("action %d: %s %s", a.ID, a.Status, a.Error))
			callFailed = true
		}
	}
	// Verify, whatever happened: another member may have won the race.
	if err := g.refresh(ctx, true); err != nil {
		return "error", errors.Join(append(errs, err)...)
	}
	g.mu.Lock()
	holder := g.knownHolder
	g.mu.Unlock()
	if holder != g.cfg.Self {
		err := errors.Join(append(errs, fmt.Errorf("verify: held by server %d", holder))...)
		if len(errs) > 0 && !callFailed && holder == before {
			// Our action failed and nobody else moved them: not a lost
			// race but an error, retried sooner (see Backoff).
			return "error", err
		}
		return "lost", err
	}
	return "success", nil
}

// stepDown removes the addresses at once and backs off.
func (g *Group) stepDown(ctx context.Context, reason string) {
	g.mu.Lock()
	was := g.holding
	g.holding = false
	g.backoffUntil = time.Now().Add(g.cfg.Backoff)
	g.mu.Unlock()
	if err := g.unconfigure(ctx); err != nil {
		g.log.Error("remove floating ips", "err", err)
	}
	if was {
		g.log.Warn("stepped down", "reason", reason)
	}
	g.setRole(RoleStandby)
	g.publish()
}

// ErrNoPeer is returned (wrapped) by Handover when no other member could
// take the floating IPs: the holder keeps them.
var ErrNoPeer = errors.New("no healthy peer to take over, keeping the floating ips")

// Handover hands the floating IPs to a healthy peer before a planned
// shutdown: this member stops being a candidate, waits (bounded by ctx or
// HandoverTimeout) until a peer claims the floating IPs, then removes its
// addresses. A member that does not hold them returns at once. So does a
// holder that sees no other alive, healthy candidate (a group of one, or
// peers down or unhealthy): it keeps the addresses, since nobody could take
// them, and returns an error wrapping ErrNoPeer. If a peer exists but does
// not take over in time the addresses stay too (better than an outage) and
// an error is returned. Run must be running; cancel its ctx afterwards.
func (g *Group) Handover(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.HandoverTimeout)
		defer cancel()
	}
	g.mu.Lock()
	running := g.running
	g.mu.Unlock()
	if !running {
		return fmt.Errorf("hand over group %s: not running", g.cfg.Name)
	}
	done := make(chan error, 1)
	select {
	case g.handoverCh <- done:
	case <-ctx.Done():
		return fmt.Errorf("hand over group %s: %w", g.cfg.Name, ctx.Err())
	}
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("hand over group %s: %w", g.cfg.Name, err)
		}
	case <-ctx.Done():
		return fmt.Errorf("hand over group %s: no peer took over: %w", g.cfg.Name, ctx.Err())
	}
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	if holding {
		return fmt.Errorf("hand over group %s: still holding", g.cfg.Name)
	}
	return nil
}

func (g *Group) startHandover(done chan error) {
	if g.cfg.Mode != "keepalived" && !g.peerCanTake() {
		// Waiting would only delay the shutdown by the whole timeout.
		g.log.Warn("not handing over: no healthy peer")
		done <- ErrNoPeer
		return
	}
	g.mu.Lock()
	g.draining = true
	g.handoverDones = append(g.handoverDones, done)
	g.mu.Unlock()
	g.log.Info("handing over")
	g.setRole(RoleSteppingDown)
	g.publish()
	if g.cfg.Mode == "keepalived" {
		// keepalived decides who takes over; we only stop holding.
		g.stepDown(context.Background(), "handover")
		g.finishHandover()
	}
}

// peerCanTake reports whether a handover can succeed: this member does not
// hold the floating IPs (nothing to hand over), or another member would
// take them (see hasEligiblePeer).
func (g *Group) peerCanTake() bool {
	g.mu.Lock()
	holding := g.holding
	g.mu.Unlock()
	if !holding {
		return true
	}
	return hasEligiblePeer(g.view(time.Now()))
}

// hasEligiblePeer reports whether, by this member's view, the group would
// move the floating IPs to another member if this one stepped aside: a
// peer is alive, has published its state, is healthy and a candidate, and
// the members alive form a majority.
func hasEligiblePeer(v View) bool {
	v.Members = slices.Clone(v.Members)
	for i := range v.Members {
		if v.Members[i].ID == v.Self {
			v.Members[i].Candidate = false
		}
	}
	v.Preempt = false
	d := Decide(v)
	return d.Quorum && d.Leader != 0 && d.Leader != v.Self
}

// abortHandover ends a pending handover with err: this member stays a
// candidate and keeps the floating IPs.
func (g *Group) abortHandover(err error) {
	g.mu.Lock()
	g.draining = false
	for _, d := range g.handoverDones {
		d <- err
	}
	g.handoverDones = nil
	g.mu.Unlock()
	g.log.Warn("handover aborted", "err", err)
	g.setRole(RoleHolder)
	g.publish()
}

// finishHandover completes the handover once a peer holds the floating IPs.
func (g *Group) finishHandover() {
	g.mu.Lock()
	if len(g.handoverDones) == 0 {
		g.mu.Unlock()
		return
	}
	holding := g.holding && g.knownHolder == g.cfg.Self
	g.mu.Unlock()
	if holding {
		return
	}
	g.stepDown(context.Background(), "handed over")
	g.mu.Lock()
	for _, d := range g.handoverDones {
		d <- nil
	}
	g.handoverDones = nil
	g.mu.Unlock()
}

// runKeepalived follows keepalived's ordered notify events: MASTER takes the
// floating IPs through the API, every other state steps down.
func (g *Group) runKeepalived(ctx context.Context) error {
	refresh := time.NewTimer(g.jitter(g.cfg.RefreshInterval))
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return g.shutdown()
		case e := <-g.deps.Notify:
			g.log.Info("keepalived state", "state", e.State, "priority", e.Priority)
			g.mu.Lock()
			g.master = e.Master()
			g.backoffUntil = time.Time{} // keepalived decides, not us
			holding := g.holding
			g.mu.Unlock()
			switch {
			case e.Master() && !holding:
				g.setRole(RoleCandidate)
				g.takeKeepalived(ctx)
			case !e.Master():
				g.stepDown(ctx, "keepalived "+e.State)
			}
		case h := <-g.healthCh:
			g.setHealthy(h)
		case done := <-g.handoverCh:
			g.startHandover(done)
		case <-g.refreshCh:
			g.keepalivedRefresh(ctx, refresh)
		case <-refresh.C:
			g.keepalivedRefresh(ctx, refresh)
		}
	}
}

func (g *Group) keepalivedRefresh(ctx context.Context, t *time.Timer) {
	g.periodicRefresh(ctx, t)
	g.mu.Lock()
	retake := g.master && !g.holding && !g.draining && !time.Now().Before(g.backoffUntil)
	g.mu.Unlock()
	if retake {
		g.takeKeepalived(ctx)
	}
}

// takeKeepalived is take without the gossip decision: keepalived already
// elected us, the API flow and its safety checks stay.
func (g *Group) takeKeepalived(ctx context.Context) {
	g.take(ctx, "keepalived master")
}

// Status is the JSON-serialisable state of a group.
type Status struct {
	Name            string      `json:"name"`
	Mode            string      `json:"mode"`
	Self            int64       `json:"self"`
	Role            Role        `json:"role"`
	Healthy         bool        `json:"healthy"`
	Decision        string      `json:"decision,omitempty"`
	Members         []Member    `json:"members"`
	FloatingIPs     []FIPStatus `json:"floating_ips"`
	LastMove        *MoveRecord `json:"last_move,omitempty"`
	MovesLastMinute int         `json:"moves_last_minute"`
	BackoffUntil    time.Time   `json:"backoff_until,omitzero"`
	SecondPath      string      `json:"second_path,omitempty"`
}

// FIPStatus is one floating IP in Status.
type FIPStatus struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	IP   string `json:"ip"`
	// HolderByAPI is the server the API assigned it to when read at ReadAt.
	HolderByAPI int64     `json:"holder_by_api"`
	ReadAt      time.Time `json:"read_at"`
	// HolderByView is the holder by this member's view (API or gossip claim).
	HolderByView int64 `json:"holder_by_view"`
	// ConfiguredHere reports whether the address is configured on this server.
	ConfiguredHere bool `json:"configured_here"`
}

// Status returns a snapshot of the group's state. It is safe to call from
// any goroutine.
func (g *Group) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	s := Status{
		Name: g.cfg.Name, Mode: g.cfg.Mode, Self: g.cfg.Self, Role: g.role, Healthy: g.healthy,
		Decision: g.decision.Reason, BackoffUntil: g.backoffUntil,
	}
	if s.BackoffUntil.Before(now) {
		s.BackoffUntil = time.Time{}
	}
	for _, m := range g.seen {
		s.Members = append(s.Members, m)
	}
	sortMembers(s.Members)
	for _, f := range g.fips {
		ip := f.IP.String()
		if f.Network.IsValid() && f.Type == "ipv6" {
			ip = f.Network.String()
		}
		s.FloatingIPs = append(s.FloatingIPs, FIPStatus{
			ID: f.ID, Name: f.Name, IP: ip, HolderByAPI: f.ServerID, ReadAt: g.apiReadAt,
			HolderByView: g.knownHolder, ConfiguredHere: g.configured,
		})
	}
	if g.lastMove != nil {
		m := *g.lastMove
		s.LastMove = &m
	}
	for _, t := range g.moves {
		if now.Sub(t) < time.Minute {
			s.MovesLastMinute++
		}
	}
	if g.peerStateFor != 0 {
		s.SecondPath = "peer " + strconv.FormatInt(g.peerStateFor, 10) + " " + g.peerState.String()
	}
	return s
}
