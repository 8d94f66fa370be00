package floatingip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hc-agent/hc-agent/logging"
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
	// BackingOff is true while the member waits after losing the floating
	// IPs or a failed move: it would not take them, so peers must not
	// choose it (a second failure would wait out the back-off).
	BackingOff bool
	// ReadDigest is the digest of the floating IP manager's last read,
	// advertised while holding (see ReadShare); zero advertises none.
	ReadDigest ReadDigest
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

// GroupConfig configures a failover group. Nothing is defaulted here: the
// daemon passes every value (the defaults live in package config; noted
// per field), and NewGroup refuses what it cannot run with.
type GroupConfig struct {
	Name string
	// Self is this server's ID (metadata instance-id).
	Self int64
	// Priority is this member's priority; 0 is a valid priority (config's
	// default is 100).
	Priority int
	// FloatingIPs are names or IDs; FloatingIPSelector a label selector.
	// At least one of them must be set.
	FloatingIPs        []string
	FloatingIPSelector string
	// ExpectedSize is the number of members including self (configured or
	// discovered peers plus one), at least 1. A larger number of members seen
	// raises it.
	ExpectedSize int
	// Mode is "memberlist" or "keepalived".
	Mode string
	// Preempt moves the floating IPs back to a better member once it has
	// been eligible for PreemptDelay. Unlike the other durations, a zero
	// PreemptDelay preempts at once, as the config file's preempt_delay: 0
	// says (the file's default is 30s).
	Preempt      bool
	PreemptDelay time.Duration
	// MaxMovesPerMinute caps attempts to take the floating IPs (config: 3).
	MaxMovesPerMinute int
	// Backoff is how long a member waits after losing the floating IPs or
	// a failed move before trying again (config: 10s). The first retry after
	// a move that failed on an error (nobody else took the floating IPs) comes
	// sooner, after min(Backoff, 1s): a failed action is usually transient
	// and the group is down meanwhile. MaxMovesPerMinute still applies.
	Backoff time.Duration
	// ActionTimeout bounds waiting for an assign action (config: 30s).
	ActionTimeout time.Duration
	// RefreshInterval is the mean period of re-reading the floating IPs from
	// the API (jittered ±20%) (config: 5m).
	RefreshInterval time.Duration
	// SecondPathTTL is how long a second-path answer is reused (config:
	// 10s). A standby cut off from its peer that would take over on a
	// "down" asks again when the answer expires; a holder, or a member that
	// would not take over anyway, asks only on the next event.
	SecondPathTTL time.Duration
	// StartupDelay is how long a starting member does not take the
	// floating IPs on a view that may only lack news: the holder by the API
	// has not been seen since start (it may not have joined yet) and not
	// every expected member has published its state (config: 3s). It never
	// delays a decision on what the member saw: once the holder was seen,
	// its death, leave or failed health check is acted on at once. A holder
	// by the API keeps its floating IPs meanwhile (agent restart).
	StartupDelay time.Duration
	// HandoverTimeout bounds Handover when ctx has no deadline (config: 10s).
	HandoverTimeout time.Duration
	// IPv6Host is the interface ID configured within IPv6 /64s (config:
	// ::1); it must be valid when the group has IPv6 floating IPs.
	IPv6Host netip.Addr
	Health   HealthConfig
}

// validate checks what the group cannot run without. It replaces nothing:
// defaults live in package config, and the daemon passes every value.
func (c GroupConfig) validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, d))
		}
	}
	if c.ExpectedSize < 1 {
		errs = append(errs, fmt.Errorf("expected size must be at least 1, got %d", c.ExpectedSize))
	}
	if c.MaxMovesPerMinute < 1 {
		errs = append(errs, fmt.Errorf("max moves per minute must be at least 1, got %d", c.MaxMovesPerMinute))
	}
	positive("backoff", c.Backoff)
	positive("action timeout", c.ActionTimeout)
	positive("refresh interval", c.RefreshInterval)
	positive("second path ttl", c.SecondPathTTL)
	positive("handover timeout", c.HandoverTimeout)
	if c.StartupDelay < 0 || c.PreemptDelay < 0 {
		errs = append(errs, fmt.Errorf("startup delay %v and preempt delay %v must not be negative", c.StartupDelay, c.PreemptDelay))
	}
	if err := c.Health.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// GroupDeps are the collaborators of a group.
type GroupDeps struct {
	// Handler holds the group's addresses. When nil, NewGroup builds the
	// floating IP handler (NewFloatingIPs) from GroupConfig, Cloud and
	// Host.
	Handler Handler
	// Cloud and Host are required when Handler is nil.
	Cloud Cloud
	Host  Host
	// Membership is required in memberlist mode.
	Membership Membership
	// NotifyFIFO is keepalived's notify_fifo in keepalived mode, and
	// NotifyInstance the VRRP instance or sync group to follow ("" is
	// any). Run reads it (ReadNotifyFIFO): the reader lives and dies with
	// Run, so a group that never runs holds no reader.
	NotifyFIFO     string
	NotifyInstance string
	// Notify, when set, carries the events instead of NotifyFIFO (tests).
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
	cfg  GroupConfig
	deps GroupDeps
	log  *slog.Logger
	// dedup logs a repeating error (API reads, the second path) once until
	// it changes.
	dedup  *logging.Dedup
	health *HealthChecker
	// handler is what holding means for the group's kind of address.
	handler Handler

	startedAt  time.Time
	healthCh   chan bool
	handoverCh chan chan error
	refreshCh  chan struct{}

	mu          sync.Mutex
	running     bool
	knownHolder int64 // by API or newer gossip claim
	holding     bool  // addresses configured here and claimed
	draining    bool
	// drained: Drain took this member out of candidacy until Resume.
	drained  bool
	master   bool // keepalived mode: last state was MASTER
	role     Role
	healthy  bool
	seen     map[int64]Member
	decision Decision
	lastMove *MoveRecord
	// failure is when and how this member first saw the known holder
	// fail (the first phase of the next move's timeline); zero while the
	// holder is fine or this member holds.
	failure      failureSeen
	moves        []time.Time
	failedMoves  int // consecutive moves that ended in "error"
	backoffUntil time.Time
	// lostBackoff: the back-off follows a loss (this member held and the
	// API shows another holder, or another member won the race), not our
	// own failed move, a refused call or the move cap. Only such a
	// back-off is advertised: peers then pass over this member (issue 11
	// defect 4), while a failure keeps holding back the whole group, so
	// that the move cap stays a cap per group.
	lostBackoff   bool
	peerState     PeerState
	peerStateAt   time.Time
	peerStateFor  int64
	handoverDones []chan error
	// advertisedBackoff is the BackingOff last published.
	advertisedBackoff bool
	// preemptAt and recheckAt are the time-based conditions of the last
	// evaluate (zero: none pending): when preemption to a better member
	// becomes due, and when the second path's answer expires while it
	// decides whether this member takes over. nextWake wakes the loop then.
	preemptAt time.Time
	recheckAt time.Time
	// viewBuf holds the members of evaluate's view between calls (only
	// the loop's goroutine uses it), so that evaluate does not allocate.
	viewBuf []Member
	// reported is the member count last given to Hooks.MembersChanged
	// (alive, healthy; -1 before the first): the hook, which sets labelled
	// gauges, runs only when the count changes.
	reported [2]int

	// wakeups counts the runs of the memberlist loop's evaluate, for tests
	// (a settled group must not wake).
	wakeups atomic.Int64
}

// NewGroup validates cfg and deps and returns a group ready to Run.
func NewGroup(cfg GroupConfig, deps GroupDeps) (*Group, error) {
	if cfg.Name == "" {
		return nil, errors.New("new group: empty name")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new group %s: %w", cfg.Name, err)
	}
	if cfg.Self == 0 {
		return nil, fmt.Errorf("new group %s: unknown server id", cfg.Name)
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("group", cfg.Name)
	handler := deps.Handler
	if handler == nil {
		if len(cfg.FloatingIPs) == 0 && cfg.FloatingIPSelector == "" {
			return nil, fmt.Errorf("new group %s: no floating ips", cfg.Name)
		}
		if deps.Cloud == nil || deps.Host == nil {
			return nil, fmt.Errorf("new group %s: cloud and host are required", cfg.Name)
		}
		var changed func(FloatingIP, bool, bool)
		if hook := deps.Hooks.FIPChanged; hook != nil {
			changed = func(f FloatingIP, configured, assigned bool) { hook(cfg.Name, f, configured, assigned) }
		}
		var err error
		handler, err = NewFloatingIPs(FloatingIPsConfig{
			Self: cfg.Self, Refs: cfg.FloatingIPs, Selector: cfg.FloatingIPSelector,
			Owner: "group:" + cfg.Name, IPv6Host: cfg.IPv6Host, ActionTimeout: cfg.ActionTimeout,
			Cloud: deps.Cloud, Host: deps.Host, Changed: changed,
		})
		if err != nil {
			return nil, fmt.Errorf("new group %s: %w", cfg.Name, err)
		}
	}
	switch cfg.Mode {
	case "memberlist":
		if deps.Membership == nil {
			return nil, fmt.Errorf("new group %s: memberlist mode without membership", cfg.Name)
		}
	case "keepalived":
		if deps.Notify == nil && deps.NotifyFIFO == "" {
			return nil, fmt.Errorf("new group %s: keepalived mode without notify fifo", cfg.Name)
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
	return &Group{
		cfg:        cfg,
		deps:       deps,
		log:        log,
		dedup:      logging.NewDedup(log),
		health:     NewHealthChecker(probe, cfg.Health),
		handler:    handler,
		healthCh:   make(chan bool, 1),
		handoverCh: make(chan chan error),
		refreshCh:  make(chan struct{}, 1),
		seen:       map[int64]Member{},
		role:       RoleStandby,
		reported:   [2]int{-1, -1},
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
	g.reported = [2]int{-1, -1} // report the members of this run
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
	notify := g.deps.Notify
	if g.cfg.Mode == "keepalived" && notify == nil {
		events := make(chan NotifyEvent, 16)
		notify = events
		wg.Add(1)
		go func() { // exits when Run returns (hcancel)
			defer wg.Done()
			if err := ReadNotifyFIFO(hctx, g.deps.NotifyFIFO, g.deps.NotifyInstance, g.log, events); err != nil && hctx.Err() == nil {
				g.log.Error("keepalived notify fifo failed", "fifo", g.deps.NotifyFIFO, "err", err)
			}
		}()
	}
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
		g.dedup.Error("read", "read floating ips failed", err)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return g.shutdown()
		case <-time.After(min(time.Second<<min(attempt, 5), 30*time.Second)):
		}
	}
	g.adoptOrClean(ctx)

	if g.cfg.Mode == "keepalived" {
		return g.runKeepalived(ctx, notify)
	}
	g.publish()

	refresh := time.NewTimer(g.jitter(g.cfg.RefreshInterval))
	defer refresh.Stop()
	// There is no tick (issue 14: a settled group costs no wakeup).
	// evaluate runs on every event that can change its outcome, and wake
	// fires exactly when a time-based condition does (see nextWake), so
	// that none adds a polling period to a failover.
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		g.wakeups.Add(1)
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
		case <-g.refreshCh:
			g.readAssignments(ctx, refresh)
		case <-refresh.C:
			if g.isHolding() {
				g.readAssignments(ctx, refresh)
			} else {
				// One reader per group (issue 14): only the holder
				// re-reads the assignments, so a group's steady-state
				// API use does not grow with its size. A standby
				// follows the holder's claims by gossip and reads
				// when it must act (take re-reads before assigning).
				refresh.Reset(g.jitter(g.cfg.RefreshInterval))
			}
		}
	}
}

// nextWake returns how long until the earliest time-based condition that
// evaluate checks changes, if one lies ahead: the backoff ends (which also
// ends its advertisement and the move cap's wait), the startup hold ends,
// preemption becomes due, or the second path's answer expires. Everything
// else evaluate depends on arrives as an event (membership, health,
// handover, refresh).
func (g *Group) nextWake(now time.Time) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next time.Time
	for _, t := range [...]time.Time{g.backoffUntil, g.startedAt.Add(g.cfg.StartupDelay), g.preemptAt, g.recheckAt} {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if next.IsZero() {
		return 0, false
	}
	return next.Sub(now), true
}

func (g *Group) isHolding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.holding
}

// readAssignments re-reads who holds the addresses and re-arms t.
func (g *Group) readAssignments(ctx context.Context, t *time.Timer) {
	g.dedup.Error("read", "read floating ips failed", g.refresh(ctx, false))
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
	backingOff := g.advertisedBackoffLocked(time.Now())
	st := LocalState{Ready: true, Priority: g.cfg.Priority, Healthy: g.healthy, Candidate: !g.draining, Holding: g.holding, BackingOff: backingOff}
	g.advertisedBackoff = backingOff
	g.mu.Unlock()
	if err := g.deps.Membership.SetLocal(st); err != nil {
		g.log.Warn("advertise local state", "err", err)
	}
}

// advertisedBackoffLocked reports whether this member advertises a
// back-off at now (see lostBackoff). g.mu must be held.
func (g *Group) advertisedBackoffLocked(now time.Time) bool {
	return g.lostBackoff && now.Before(g.backoffUntil)
}

// view builds the decision view from membership and the known holder.
func (g *Group) view(now time.Time) View { return g.viewInto(now, nil) }

// viewInto is view with the members appended to buf[:0], so that a caller
// that owns buf (evaluate: the loop's goroutine) builds the view without
// allocating.
func (g *Group) viewInto(now time.Time, buf []Member) View {
	ms := g.deps.Membership.Members()
	g.mu.Lock()
	defer g.mu.Unlock()
	// alive reports whether membership lists id alive; groups are small
	// (a handful of members), a scan beats building a set each time.
	alive := func(id int64) bool {
		for i := range ms {
			if ms[i].ID == id && !ms[i].Left {
				return true
			}
		}
		return false
	}
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
		prev, ok := g.seen[m.ID]
		m.Alive = true
		if m.ID == g.cfg.Self {
			// Our own state is authoritative here, gossip may lag.
			m.Healthy, m.Candidate, m.Holding, m.Priority = g.healthy, !g.draining, g.holding, g.cfg.Priority
			m.BackingOff = g.advertisedBackoffLocked(now)
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
	if !alive(g.cfg.Self) {
		m := Member{ID: g.cfg.Self, Priority: g.cfg.Priority, Alive: true, Healthy: g.healthy, Candidate: !g.draining, Holding: g.holding,
			BackingOff: g.advertisedBackoffLocked(now)}
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
		Members:      buf[:0],
	}
	if v.Members == nil {
		v.Members = make([]Member, 0, len(g.seen))
	}
	for id, m := range g.seen {
		if id != g.cfg.Self && !m.Left && !alive(id) {
			m.Alive, m.Holding, m.Since = false, false, time.Time{}
			g.seen[id] = m
		}
		v.Members = append(v.Members, m)
	}
	sortMembers(v.Members)
	g.trackHolderLocked(now)
	return v
}

// failureSeen is a holder failure as a member first saw it.
type failureSeen struct {
	holder int64
	kind   Failure
	at     time.Time
}

// trackHolderLocked records when the known holder stops being an alive,
// healthy candidate in this member's view, for the timeline of the move
// that follows. A later change of kind (unhealthy, then dead) keeps the
// first sighting. g.mu must be held.
func (g *Group) trackHolderLocked(now time.Time) {
	h := g.knownHolder
	m, ok := g.seen[h]
	if h == 0 || h == g.cfg.Self || !ok {
		g.failure = failureSeen{}
		return
	}
	var kind Failure
	switch {
	case m.Left:
		kind = FailureLeft
	case !m.Alive:
		kind = FailureDead
	case !m.Healthy:
		kind = FailureUnhealthy
	case !m.Candidate:
		kind = FailureNotCandidate
	default:
		g.failure = failureSeen{}
		return
	}
	if g.failure.holder != h || g.failure.at.IsZero() {
		g.failure = failureSeen{holder: h, kind: kind, at: now}
	}
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
	g.mu.Lock()
	backoffChanged := g.advertisedBackoff != g.advertisedBackoffLocked(now)
	g.mu.Unlock()
	if backoffChanged {
		// A back-off began or ended: tell the peers (see LocalState).
		g.publish()
	}
	v := g.viewInto(now, g.viewBuf)
	g.viewBuf = v.Members
	alive, healthy := 0, 0
	for _, m := range v.Members {
		if m.Alive {
			alive++
			if m.Healthy {
				healthy++
			}
		}
	}
	if n := [2]int{alive, healthy}; n != g.reported {
		g.reported = n
		if g.deps.Hooks.MembersChanged != nil {
			g.deps.Hooks.MembersChanged(g.cfg.Name, alive, healthy)
		}
	}
	secondPath := v.ExpectedSize == 2 && alive == 1 && g.deps.PeerCheck != nil
	if secondPath {
		v.Peer = g.secondPath(ctx, g.peerOf(v), now)
	}
	d := Decide(v)
	preemptAt, _ := preemptDue(v)

	g.mu.Lock()
	if d != g.decision {
		g.log.Debug("decision", "leader", d.Leader, "quorum", d.Quorum, "reason", d.Reason)
	}
	g.decision = d
	holding, draining, holder := g.holding, g.draining, g.knownHolder
	g.preemptAt, g.recheckAt = preemptAt, time.Time{}
	if secondPath && !holding && takesIfPeerDown(v) {
		// Ask again when the answer expires: the cut-off peer may have
		// gone down meanwhile. Only while the answer matters: a holder
		// keeps its addresses whatever it says, and a member that would
		// not take over anyway (unhealthy, draining) waits for an event;
		// neither keeps asking (an API call each with ServerStatusPeerCheck).
		g.recheckAt = g.peerStateAt.Add(g.cfg.SecondPathTTL)
	}
	backoff := now.Before(g.backoffUntil) || g.startupHoldLocked(v, now)
	g.mu.Unlock()

	switch {
	case holding && holder != g.cfg.Self:
		// Claims can cross (two winners of a race each see the other's
		// claim): the API decides who steps down. refresh steps down if
		// another server holds them.
		err := g.refresh(ctx, true)
		g.dedup.Error("verify", "verify claim failed", err)
		if err != nil {
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

// takesIfPeerDown reports whether v's member would take over if the
// second path said that its peer is down.
func takesIfPeerDown(v View) bool {
	v.Peer = PeerDown
	return Decide(v).Take(v.Self)
}

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
	g.dedup.Error("second path", "second path failed", err, "peer", peer)
	if err != nil {
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
