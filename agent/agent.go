// Package agent is hc-agent's supervisor and the daemon's composition
// root. The supervisor (Agent) runs the components, tells systemd READY,
// STATUS= and the watchdog, and serves /healthz, /status and the metrics.
// NewDaemon (daemon_linux.go) is the one place where the daemon is wired:
// straight-line code that builds each client once (one netlink handle, one
// metadata client, one cloudapi.Client and so one request budget) and
// passes it down to netconf, the floating IP manager and the failover
// groups.
//
// The agent applies nothing before it has read the metadata summary: the
// instance ID decides whether the state directory belongs to this server or
// to the server a snapshot image was made on.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/statedir"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/control"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/logging"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metrics"
	"github.com/hc-agent/hc-agent/stackdump"
)

// Component names: the component label of the reconcile metrics and the
// keys of Status.Components.
const (
	ComponentNetconf    = metrics.ComponentNetconf
	ComponentFloatingIP = metrics.ComponentFloatingIP
	// ComponentRestore puts back addresses of the groups and the manager
	// that someone else deleted; it never gates readiness.
	ComponentRestore = "restore"
)

// Component is a long-running part of the agent, such as the netconf
// reconciler or the floating IP manager. Run returns nil or ctx.Err() once
// ctx is done, and an error only when the component cannot go on.
type Component interface {
	Run(ctx context.Context) error
}

// Triggerer is implemented by components whose reconcile can be requested
// out of turn; the agent uses it to keep the loop running at least every
// half watchdog interval.
type Triggerer interface {
	Trigger()
}

// Group is one failover group.
type Group interface {
	Component
	// Name is the group name from the configuration.
	Name() string
	// Handover hands the group's floating IPs to a healthy peer when this
	// server holds them; it is called on shutdown while Run still runs.
	Handover(ctx context.Context) error
	// Status is the group's JSON-serialisable view for /status.
	Status() any
}

// roler is optionally implemented by a Group to show its role in STATUS=.
type roler interface {
	Role() string
}

// SummaryReader reads the metadata summary.
type SummaryReader interface {
	Summary(ctx context.Context) (metadata.Summary, error)
}

// Report is what a component tells the agent after each reconcile run.
type Report struct {
	// Component is ComponentNetconf or ComponentFloatingIP.
	Component string
	// Duration is how long the run took.
	Duration time.Duration
	// Changes is the number of netlink writes the run made.
	Changes int
	// Blackholed is netconf's metadata black-hole check.
	Blackholed bool
	// Err is the run's error, nil on success.
	Err error
}

// Components are what the daemon's wiring built for this server; the
// supervisor runs them. A nil field leaves the component out.
type Components struct {
	// Netconf is the private network reconciler. Its Report calls make the
	// agent ready, and its first success lets the groups start.
	Netconf Component
	// FloatingIP keeps the floating IPs assigned here configured.
	FloatingIP Component
	// Restore puts back the floating IP addresses and private VIPs that
	// someone else deletes, from address events (optional).
	Restore Component
	// Groups creates the failover groups. The agent calls it after
	// netconf's first successful reconcile (the gossip binds to a private
	// address that netconf configures, at most Options.GroupStartWait
	// later) and again, with back-off, until it succeeds.
	Groups func(ctx context.Context) ([]Group, error)
	// Factory builds single groups for a reload; nil when groups cannot
	// run (no token, floating IPs disabled).
	Factory GroupFactory
}

// Wiring builds the components once the metadata summary (this server's
// identity) is known and the state directory is this server's. ctx ends
// at shutdown.
type Wiring func(ctx context.Context, sum metadata.Summary) (Components, error)

// Options are the supervisor's settings and its seams to systemd and the
// clock. The zero value of each field takes the noted default.
type Options struct {
	Log      *slog.Logger
	Registry *prometheus.Registry // default: a new private registry
	Build    metrics.BuildInfo

	// CheckMetadataRoute, when set, runs before every metadata read at
	// startup: it reports (and, when configured, pins) the metadata black
	// hole from netlink alone and returns the hint for the read's error.
	CheckMetadataRoute func(ctx context.Context) (blackholed bool, hint string)

	// Notify sends one sd_notify message (default daemon.SdNotify, a no-op
	// without NOTIFY_SOCKET).
	Notify func(state string) error
	// Watchdog returns the systemd watchdog interval, 0 when disabled
	// (default daemon.SdWatchdogEnabled, which reads WATCHDOG_USEC).
	Watchdog func() (time.Duration, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetryDelay is the first delay between metadata attempts at startup; it
	// doubles up to 30s (default 1s).
	RetryDelay time.Duration
	// GroupStartWait bounds how long failover groups wait for the first
	// successful private network reconcile before they start anyway
	// (default 10s).
	GroupStartWait time.Duration
	// HandoverTimeout bounds the group handover on shutdown (default 10s).
	HandoverTimeout time.Duration
	// StaleAfter makes /healthz fail when no reconcile reported for this
	// long (default 5m).
	StaleAfter time.Duration
	// Stacks, when set, tracks the loops that ping the watchdog, so that a
	// watchdog kill prints their stacks only (package stackdump).
	Stacks *stackdump.Dumper
	// SetLogLevel, when set, changes the level of Log in place (a reload
	// of log.level); without it the change waits for the next start.
	SetLogLevel func(level string) error
	// OnReady, when set, is called once when the agent becomes ready
	// (after READY=1); it must not block.
	OnReady func()
}

type componentState struct {
	LastRun     time.Time
	LastSuccess time.Time
	Duration    float64
	Changes     int
	Error       string
	// Mode and Period are the component's cadence (SetCadence); Period
	// is meaningful once Mode is set.
	Mode   string
	Period time.Duration
}

// Agent is the daemon. Build it with New and call Run once.
type Agent struct {
	cfg     config.Config
	deps    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	dedup   *logging.Dedup

	mu          sync.Mutex
	phase       string
	ready       bool
	readyOn     string // component whose first success makes the agent ready
	started     time.Time
	summary     metadata.Summary
	blackholed  bool
	components  map[string]*componentState
	groups      []Group
	groupErr    string        // why the failover groups are not running yet
	netconfOK   chan struct{} // closed on netconf's first successful run
	netconfDone bool
	statusLine  string
	watchdog    time.Duration

	// Run-time changes (ops.go): the run context, wait group and error
	// channel of Run, each group's own run, the factory for groups a
	// reload adds, and what the control socket's reload calls.
	runCtx        context.Context
	runWG         *sync.WaitGroup
	runErrc       chan error
	groupRuns     map[string]*groupRun
	factory       GroupFactory
	groupsStarted bool
	reloadFn      func(context.Context) error
	serial        int64     // SMBIOS serial read at start, 0 when none (clone.go)
	netconf       Component // the private network reconciler, for a reload
}

// New builds the supervisor for the configuration (defaults already applied
// and validated).
func New(cfg config.Config, deps Options) (*Agent, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("create agent: no state directory")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	if deps.Notify == nil {
		deps.Notify = func(state string) error {
			_, err := daemon.SdNotify(false, state)
			return err
		}
	}
	if deps.Watchdog == nil {
		deps.Watchdog = func() (time.Duration, error) { return daemon.SdWatchdogEnabled(false) }
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.RetryDelay <= 0 {
		deps.RetryDelay = time.Second
	}
	if deps.GroupStartWait <= 0 {
		deps.GroupStartWait = 10 * time.Second
	}
	if deps.HandoverTimeout <= 0 {
		deps.HandoverTimeout = 10 * time.Second
	}
	if deps.StaleAfter <= 0 {
		deps.StaleAfter = 5 * time.Minute
	}
	a := &Agent{
		cfg:        cfg,
		deps:       deps,
		log:        deps.Log,
		dedup:      logging.NewDedup(deps.Log),
		components: map[string]*componentState{},
		netconfOK:  make(chan struct{}),
		phase:      "starting",
	}
	a.metrics = metrics.New(deps.Registry, deps.Build, metrics.WithRuntimeCollectors(), metrics.WithClock(deps.Now))
	return a, nil
}

// Metrics returns the agent's collectors, for wiring request observers of
// the API client.
func (a *Agent) Metrics() *metrics.Metrics { return a.metrics }

// Run runs the daemon until ctx is done, then hands over the floating IPs of
// the groups this server holds and stops: it serves the metrics listener,
// reads the metadata summary from md until it succeeds, makes the state
// directory this server's, has wire build the components and runs them. It
// returns nil after a clean shutdown and an error when something could not
// start or a component failed.
func (a *Agent) Run(ctx context.Context, md SummaryReader, wire Wiring) (err error) {
	a.mu.Lock()
	a.started = a.deps.Now()
	a.mu.Unlock()
	wd, werr := a.deps.Watchdog()
	if werr != nil {
		a.log.Warn("systemd watchdog disabled", "err", werr)
	}
	a.mu.Lock()
	a.watchdog = wd
	a.mu.Unlock()

	// The listener comes first so that /healthz tells "starting" while the
	// metadata service is not there yet.
	var srvDone chan error
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		stopSrv()
		if srvDone != nil {
			if serr := <-srvDone; serr != nil {
				err = errors.Join(err, serr)
			}
		}
	}()
	if listen := a.cfg.Metrics.Listen; listen != "off" {
		srv, lerr := metrics.Listen(listen, a.Handler(), a.log, metrics.WithWebConfigFile(a.cfg.Metrics.WebConfigFile))
		if lerr != nil {
			return fmt.Errorf("start agent: %w", lerr)
		}
		srvDone = make(chan error, 1)
		// Exits when srvCtx is cancelled by the deferred stopSrv.
		go func() { srvDone <- srv.Serve(srvCtx) }()
	}
	// The control socket (hc-agent handover, reload, status) lives as long
	// as the metrics listener; a configuration without runtime_dir (tests
	// that build one by hand) has none.
	if a.cfg.RuntimeDir != "" {
		ctl, cerr := control.Listen(control.Path(a.cfg.RuntimeDir), controlDaemon{a}, a.log)
		if cerr != nil {
			return fmt.Errorf("start agent: %w", cerr)
		}
		ctlDone := make(chan error, 1)
		// Exits when srvCtx is cancelled by the deferred stopSrv.
		go func() { ctlDone <- ctl.Serve(srvCtx) }()
		defer func() {
			stopSrv()
			if cerr := <-ctlDone; cerr != nil {
				err = errors.Join(err, cerr)
			}
		}()
	}
	a.checkSerial()

	sum, err := a.waitSummary(ctx, md)
	if err != nil {
		return nil // ctx done before the metadata service answered: nothing was applied
	}
	a.mu.Lock()
	a.summary = sum
	a.mu.Unlock()
	a.log.Info("metadata read", "instance_id", sum.InstanceID, "hostname", sum.Hostname)
	a.checkSerialAgainst(sum.InstanceID)
	a.setPhase("applying configuration")

	if err := a.checkState(sum.InstanceID); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	built, err := wire(runCtx, sum)
	if err != nil {
		a.notify("STATUS=failed: " + err.Error())
		return fmt.Errorf("start agent: %w", err)
	}
	comps := a.toRun(built)

	var wg sync.WaitGroup
	errc := make(chan error, len(comps)+len(a.cfg.Groups)+8)
	a.mu.Lock()
	a.runCtx, a.runWG, a.runErrc, a.factory, a.netconf = runCtx, &wg, errc, built.Factory, built.Netconf
	if built.Groups == nil {
		a.groupsStarted = true
	}
	a.mu.Unlock()
	start := func(name string, c Component) {
		wg.Go(func() {
			if name == a.readyOn {
				// This loop pings the watchdog (Report).
				defer a.deps.Stacks.Track(name)()
			}
			// Exits when runCtx is cancelled at shutdown, or on a fatal error.
			if err := c.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("run %s: %w", name, err)
			}
		})
	}
	var trig []Triggerer
	for _, nc := range comps {
		start(nc.name, nc.c)
		if t, ok := nc.c.(Triggerer); ok && nc.name == a.readyOn {
			trig = append(trig, t)
		}
	}
	if a.readyOn == "" {
		// Nothing reconciles (private networks disabled, no token): ready
		// now; the watchdog is fed by the keep-alive loop below.
		a.setReady()
	}
	if built.Groups != nil {
		// Groups gossip on a private address that netconf configures: they
		// start after it did, so that a fresh server joins its group on
		// first boot. Exits when ctx or runCtx is done.
		wg.Go(func() { a.startGroups(ctx, runCtx, built.Groups) })
	}
	if wd > 0 {
		// Make the loop that pings the watchdog run at least every half
		// interval. The ping itself comes from Report, i.e. from the loop:
		// a stuck loop stops pinging and systemd restarts the agent.
		// Exits when runCtx is cancelled.
		wg.Go(func() {
			if len(trig) == 0 {
				// Nothing reconciles: this loop pings the watchdog.
				defer a.deps.Stacks.Track("keep-alive")()
			}
			a.keepLoopBusy(runCtx, wd/2, trig)
		})
	}

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("stopping", "reason", context.Cause(ctx).Error())
	case runErr = <-errc:
		a.log.Error("component failed", "err", runErr)
	}
	a.mu.Lock()
	groups := a.groups
	a.mu.Unlock()
	a.shutdown(groups)
	stopRun()
	wg.Wait()
	return runErr
}

type namedComponent struct {
	name string
	c    Component
}

// toRun lists what Run starts and decides which component's first
// success makes the agent ready.
func (a *Agent) toRun(c Components) []namedComponent {
	var comps []namedComponent
	if c.Netconf != nil {
		comps = append(comps, namedComponent{ComponentNetconf, c.Netconf})
		a.readyOn = ComponentNetconf
	}
	if c.FloatingIP != nil {
		comps = append(comps, namedComponent{ComponentFloatingIP, c.FloatingIP})
		if a.readyOn == "" {
			a.readyOn = ComponentFloatingIP
		}
	}
	if c.Restore != nil {
		comps = append(comps, namedComponent{ComponentRestore, c.Restore})
	}
	return comps
}

// startGroups creates the failover groups and starts them with start. It
// first waits, up to Options.GroupStartWait, for netconf's first successful
// reconcile: the gossip binds to a private address that netconf
// configures. A failed creation (the address is still missing, the API
// cannot be reached for peer discovery) is retried with backoff, logged
// once until it changes and shown in STATUS=; private networks keep being
// reconciled meanwhile. It returns once the groups run or when stop or
// runCtx is done.
func (a *Agent) startGroups(stop, runCtx context.Context, newGroups func(context.Context) ([]Group, error)) {
	if a.readyOn == ComponentNetconf {
		t := time.NewTimer(a.deps.GroupStartWait)
		select {
		case <-a.netconfOK:
		case <-t.C:
			a.log.Warn("private networks not configured yet: starting failover groups anyway", "waited", a.deps.GroupStartWait)
		case <-stop.Done():
		case <-runCtx.Done():
		}
		t.Stop()
	}
	delay := a.deps.RetryDelay
	for stop.Err() == nil && runCtx.Err() == nil {
		gs, err := newGroups(runCtx)
		a.dedup.Error("groups", "create failover groups failed", err)
		a.mu.Lock()
		a.groupErr = ""
		if err != nil {
			a.groupErr = err.Error()
		}
		a.mu.Unlock()
		if err == nil {
			a.mu.Lock()
			if stop.Err() != nil {
				// Shutdown began while the groups were created: they
				// never ran and hold nothing; runCtx ends them below.
				a.mu.Unlock()
				return
			}
			a.groups = gs
			a.groupsStarted = true
			a.mu.Unlock()
			for _, g := range gs {
				a.runGroup(g)
			}
			a.log.Info("failover groups started", "groups", len(gs))
			a.updateStatus()
			return
		}
		a.updateStatus()
		t := time.NewTimer(delay)
		select {
		case <-stop.Done():
		case <-runCtx.Done():
		case <-t.C:
		}
		t.Stop()
		delay = min(2*delay, 30*time.Second)
	}
}

// waitSummary reads the metadata summary until it succeeds or ctx is done.
// Nothing is applied without it: a failed read never means "no networks".
func (a *Agent) waitSummary(ctx context.Context, md SummaryReader) (metadata.Summary, error) {
	a.setPhase("waiting for the metadata service")
	delay := a.deps.RetryDelay
	for {
		hint := a.checkMetadataRoute(ctx)
		sum, err := md.Summary(ctx)
		a.metrics.ObserveMetadata("summary", err)
		if err != nil && hint != "" {
			err = fmt.Errorf("%w; %s", err, hint)
		}
		a.dedup.Error("metadata", "read metadata summary failed", err)
		if err == nil {
			return sum, nil
		}
		a.setPhase("waiting for the metadata service: " + err.Error())
		// The startup loop is alive: feed the watchdog so that a slow
		// metadata service does not look like a hang.
		a.pingWatchdog()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return metadata.Summary{}, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// checkState makes the state directory belong to instanceID (see
// statedir.Claim).
func (a *Agent) checkState(instanceID int64) error {
	return statedir.Claim(a.cfg.StateDir, statedir.State{InstanceID: instanceID, CreatedAt: a.deps.Now().UTC(), Version: a.deps.Build.Version}, a.log)
}

// Report is called by components after each reconcile run (success or
// not): it records metrics, pings the systemd watchdog (the ping comes from
// the reconcile loop itself) and sends READY=1 after the first success of
// the component the agent is ready on.
func (a *Agent) Report(r Report) {
	if r.Err != nil && errors.Is(r.Err, context.Canceled) {
		// A run cut short by shutdown is neither a failure nor a sign of life.
		return
	}
	now := a.deps.Now()
	a.metrics.ObserveReconcile(r.Component, r.Duration, r.Changes, r.Err)
	// Components log their own errors (once until they change); the agent
	// logs only its own state changes.

	a.mu.Lock()
	cs := a.components[r.Component]
	if cs == nil {
		cs = &componentState{}
		a.components[r.Component] = cs
	}
	cs.LastRun, cs.Duration, cs.Changes, cs.Error = now, r.Duration.Seconds(), r.Changes, ""
	if r.Err != nil {
		cs.Error = r.Err.Error()
	} else {
		cs.LastSuccess = now
	}
	var bhChanged bool
	if r.Component == ComponentNetconf {
		bhChanged = a.blackholed != r.Blackholed
		a.blackholed = r.Blackholed
	}
	becomeReady := !a.ready && r.Err == nil && r.Component == a.readyOn
	if r.Err == nil && r.Component == ComponentNetconf && !a.netconfDone {
		a.netconfDone = true
		close(a.netconfOK)
	}
	a.mu.Unlock()

	if r.Component == ComponentNetconf {
		a.metrics.SetBlackholed(r.Blackholed)
		switch {
		case bhChanged && r.Blackholed:
			a.log.Warn("metadata black hole: a route sends 169.254.169.254 through a private network gateway")
		case bhChanged:
			a.log.Info("metadata black hole gone")
		}
	}
	if r.Changes > 0 {
		a.log.Info("reconciled", "component", r.Component, "changes", r.Changes, "duration", r.Duration)
	}
	a.pingWatchdog()
	if becomeReady {
		a.setReady()
	}
	a.updateStatus()
}

func (a *Agent) setReady() {
	a.mu.Lock()
	if a.ready {
		a.mu.Unlock()
		return
	}
	a.ready = true
	a.phase = "running"
	a.mu.Unlock()
	a.metrics.SetReady(true)
	a.log.Info("ready")
	a.notify("READY=1")
	a.updateStatus()
	if a.deps.OnReady != nil {
		a.deps.OnReady()
	}
}

func (a *Agent) pingWatchdog() {
	a.mu.Lock()
	wd := a.watchdog
	a.mu.Unlock()
	if wd <= 0 {
		return
	}
	a.notify("WATCHDOG=1")
	a.metrics.IncWatchdog()
}

// keepLoopBusy triggers the reconcile loop every period so that its Report
// pings the watchdog in time even when the poll interval is longer than the
// watchdog allows. Without a triggerable loop it pings itself.
func (a *Agent) keepLoopBusy(ctx context.Context, period time.Duration, trig []Triggerer) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(trig) == 0 {
			a.pingWatchdog()
			continue
		}
		for _, tr := range trig {
			tr.Trigger()
		}
	}
}

// shutdown tells systemd and hands over the groups' floating IPs.
func (a *Agent) shutdown(groups []Group) {
	a.notify("STOPPING=1")
	if len(groups) == 0 {
		a.setPhase("stopping")
		return
	}
	a.setPhase("stopping: handing over floating IPs")
	hctx, cancel := context.WithTimeout(context.Background(), a.deps.HandoverTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Go(func() {
			err := g.Handover(hctx)
			switch {
			case errors.Is(err, floatingip.ErrNoPeer):
				a.log.Info("no peer could take over: floating IPs stay here", "group", g.Name())
				return
			case err != nil:
				a.log.Error("handover failed", "group", g.Name(), "err", err)
				return
			}
			a.log.Info("handover done", "group", g.Name())
		})
	}
	wg.Wait()
}

func (a *Agent) notify(state string) {
	if err := a.deps.Notify(state); err != nil {
		a.dedup.Error("sd_notify", "notify systemd failed", err)
	}
}

func (a *Agent) setPhase(p string) {
	a.mu.Lock()
	a.phase = p
	a.mu.Unlock()
	a.updateStatus()
}

// updateStatus sends STATUS= when the one-line summary changed.
func (a *Agent) updateStatus() {
	a.mu.Lock()
	line := a.statusLineLocked()
	changed := line != a.statusLine
	a.statusLine = line
	a.mu.Unlock()
	if changed {
		a.notify("STATUS=" + line)
	}
}

func (a *Agent) statusLineLocked() string {
	parts := []string{a.phase}
	names := make([]string, 0, len(a.components))
	for n := range a.components {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if e := a.components[n].Error; e != "" {
			parts = append(parts, n+" failing: "+e)
		} else {
			parts = append(parts, n+" ok")
		}
	}
	if a.groupErr != "" {
		parts = append(parts, "failover groups not started: "+a.groupErr)
	}
	for _, g := range a.groups {
		if r, ok := g.(roler); ok {
			parts = append(parts, "group "+g.Name()+" "+r.Role())
		}
	}
	if a.blackholed {
		parts = append(parts, "metadata black hole detected")
	}
	return strings.Join(parts, "; ")
}
