package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/control"
	"github.com/hc-agent/hc-agent/floatingip"
	"github.com/hc-agent/hc-agent/netconf"
	"github.com/hc-agent/hc-agent/reload"
)

// This file holds what the daemon does for an operator at run time: the
// control socket's requests (status, drain, resume, reload) and the reload
// target (groups started, stopped and changed while the daemon runs).

// GroupFactory builds one failover group at run time, for a group that a
// reload adds or restarts; Peers resolves a group's peer addresses as at
// start (for a reload that changes them in place).
type GroupFactory interface {
	NewGroup(ctx context.Context, g config.Group) (Group, error)
	Peers(ctx context.Context, g config.Group) ([]string, error)
}

// drainer is implemented by groups that can be drained (floatingip.Group).
type drainer interface {
	Drain(ctx context.Context) error
	Resume()
}

// groupRun is one running group with its own context, so that a reload
// can stop it alone.
type groupRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ control.Daemon = controlDaemon{}
	_ reload.Target  = (*Agent)(nil)
)

// controlDaemon serves the control socket's requests from the agent.
type controlDaemon struct{ a *Agent }

func (c controlDaemon) Status(context.Context) any { return c.a.Status() }

func (c controlDaemon) Handover(ctx context.Context, groups []string) error {
	return c.a.DrainGroups(ctx, groups)
}

func (c controlDaemon) Resume(ctx context.Context, groups []string) error {
	return c.a.ResumeGroups(ctx, groups)
}

func (c controlDaemon) Reload(ctx context.Context) error { return c.a.Reload(ctx) }

// SetReload sets what the control socket's reload request calls (a
// reload.Reloader's Reload); without it reload is refused.
func (a *Agent) SetReload(f func(ctx context.Context) error) {
	a.mu.Lock()
	a.reloadFn = f
	a.mu.Unlock()
}

// runGroup starts g on its own context below the run context, counted in
// the supervisor's wait group; its error ends the daemon as a component's
// does.
func (a *Agent) runGroup(g Group) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithCancel(a.runCtx)
	r := &groupRun{cancel: cancel, done: make(chan struct{})}
	if a.groupRuns == nil {
		a.groupRuns = map[string]*groupRun{}
	}
	a.groupRuns[g.Name()] = r
	a.runWG.Go(func() {
		// Exits when the run context ends (shutdown) or StopGroup cancels.
		defer close(r.done)
		if err := g.Run(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			select {
			case a.runErrc <- fmt.Errorf("run group %s: %w", g.Name(), err):
			default:
			}
		}
	})
}

// findGroups returns the running groups named (all when names is empty).
func (a *Agent) findGroups(names []string) ([]Group, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(names) == 0 {
		if len(a.groups) == 0 && len(a.cfg.Groups) > 0 {
			return nil, errors.New("failover groups are not running yet")
		}
		return slices.Clone(a.groups), nil
	}
	var out []Group
	for _, n := range names {
		i := slices.IndexFunc(a.groups, func(g Group) bool { return g.Name() == n })
		if i < 0 {
			return nil, &control.NotFoundError{Group: n}
		}
		out = append(out, a.groups[i])
	}
	return out, nil
}

// DrainGroups is `hc-agent handover`: it drains the named groups (all when
// none): a holder hands its addresses to a healthy peer, and the member
// stays out of candidacy until ResumeGroups or a restart.
func (a *Agent) DrainGroups(ctx context.Context, names []string) error {
	gs, err := a.findGroups(names)
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, a.deps.HandoverTimeout)
	defer cancel()
	var errs []error
	for _, g := range gs {
		d, ok := g.(drainer)
		if !ok {
			errs = append(errs, fmt.Errorf("group %s cannot be drained", g.Name()))
			continue
		}
		if err := d.Drain(hctx); err != nil {
			errs = append(errs, err)
			continue
		}
		a.log.Info("group drained", "group", g.Name())
	}
	a.updateStatus()
	return errors.Join(errs...)
}

// ResumeGroups is `hc-agent handover --resume`.
func (a *Agent) ResumeGroups(_ context.Context, names []string) error {
	gs, err := a.findGroups(names)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if d, ok := g.(drainer); ok {
			d.Resume()
		}
	}
	a.updateStatus()
	return nil
}

// Reload is the control socket's reload request.
func (a *Agent) Reload(ctx context.Context) error {
	a.mu.Lock()
	f := a.reloadFn
	a.mu.Unlock()
	if f == nil {
		return errors.New("reload is not available in this daemon")
	}
	return f(ctx)
}

// errNoFactory: groups cannot start at run time without the API parts.
var errNoFactory = errors.New("failover groups need an API token and floating_ips enabled at start; restart the daemon")

// groupsReady reports whether reload may change the groups: the first
// start of the groups is over (they wait for the private networks).
func (a *Agent) groupsReady() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCtx == nil || (len(a.cfg.Groups) > 0 && !a.groupsStarted) {
		return errors.New("failover groups are still starting; reload again once they run")
	}
	return nil
}

// StartGroup is reload.Target: it builds and runs a new group.
func (a *Agent) StartGroup(ctx context.Context, g config.Group, _ [][]byte) error {
	if err := a.groupsReady(); err != nil {
		return err
	}
	a.mu.Lock()
	f := a.factory
	a.mu.Unlock()
	if f == nil {
		return fmt.Errorf("start group %s: %w", g.Name, errNoFactory)
	}
	grp, err := f.NewGroup(ctx, g)
	if err != nil {
		return fmt.Errorf("start group %s: %w", g.Name, err)
	}
	a.mu.Lock()
	a.groups = append(a.groups, grp)
	a.mu.Unlock()
	a.runGroup(grp)
	a.updateStatus()
	return nil
}

// StopGroup is reload.Target: the group hands its addresses to a healthy
// peer (a group without one keeps serving them until it stops, and a peer
// takes them when it sees the member leave), then stops.
func (a *Agent) StopGroup(ctx context.Context, name string) error {
	if err := a.groupsReady(); err != nil {
		return err
	}
	gs, err := a.findGroups([]string{name})
	if err != nil {
		return err
	}
	g := gs[0]
	hctx, cancel := context.WithTimeout(ctx, a.deps.HandoverTimeout)
	err = g.Handover(hctx)
	cancel()
	switch {
	case errors.Is(err, floatingip.ErrNoPeer):
		a.log.Info("no peer could take over: the group stops with its addresses here", "group", name)
	case err != nil:
		a.log.Warn("handover before stopping the group failed", "group", name, "err", err)
	}
	a.mu.Lock()
	r := a.groupRuns[name]
	delete(a.groupRuns, name)
	a.groups = slices.DeleteFunc(a.groups, func(x Group) bool { return x.Name() == name })
	a.mu.Unlock()
	if r != nil {
		r.cancel()
		<-r.done
	}
	a.metrics.DeleteGroup(name)
	a.log.Info("group stopped", "group", name)
	a.updateStatus()
	return nil
}

// UpdateGroup is reload.Target: in-place changes to a running group.
func (a *Agent) UpdateGroup(ctx context.Context, gp reload.GroupPlan, keys [][]byte) error {
	if err := a.groupsReady(); err != nil {
		return err
	}
	gs, err := a.findGroups([]string{gp.Name})
	if err != nil {
		return err
	}
	ga, ok := gs[0].(groupAdapter)
	if !ok {
		return fmt.Errorf("update group %s: not a failover group of this daemon", gp.Name)
	}
	a.mu.Lock()
	f := a.factory
	a.mu.Unlock()
	if f == nil {
		return fmt.Errorf("update group %s: %w", gp.Name, errNoFactory)
	}
	peers, err := f.Peers(ctx, gp.New)
	if err != nil {
		return fmt.Errorf("update group %s: %w", gp.Name, err)
	}
	var errs []error
	if gs, ok := ga.gossip(); ok {
		if slices.Contains(gp.Changed, "key_file content") || slices.Contains(gp.Changed, "key_file") {
			if err := gs.SetKeys(keys); err != nil {
				errs = append(errs, err)
			} else {
				a.log.Info("gossip keys changed", "group", gp.Name, "keys", len(keys))
			}
		}
		if slices.Contains(gp.Changed, "peers") {
			gs.SetPeers(peers)
		}
	}
	if slices.Contains(gp.Changed, "health") {
		if err := ga.SetHealth(healthConfig(gp.New.Health)); err != nil {
			errs = append(errs, err)
		}
	}
	n := gp.New
	if err := ga.Update(floatingip.Settings{
		Priority: n.Priority, Preempt: n.Preempt, PreemptDelay: n.PreemptDelay,
		MaxMovesPerMinute: n.MaxMovesPerMinute, ExpectedSize: len(peers) + 1,
	}); err != nil {
		errs = append(errs, err)
	}
	a.updateStatus()
	return errors.Join(errs...)
}

// optionsSetter is the private network reconciler's reload hook
// (netconf.Reconciler.SetOptions).
type optionsSetter interface {
	SetOptions(netconf.Options)
}

// ReconcilePrivateNetworks is reload.Target: the running reconciler takes
// the new settings and reconciles at once. Private networks that were
// disabled at start have no reconciler: that change waits for the next
// start.
func (a *Agent) ReconcilePrivateNetworks(_ context.Context, pn config.PrivateNetworks) error {
	a.mu.Lock()
	s, ok := a.netconf.(optionsSetter)
	c := a.cfg
	c.PrivateNetworks = pn
	a.cfg.PrivateNetworks = pn
	a.mu.Unlock()
	if !ok {
		return reload.ErrNeedsRestart
	}
	s.SetOptions(NetconfOptions(c))
	a.log.Info("private network settings changed: reconciling")
	return nil
}

// SetLogLevel is reload.Target: Options.SetLogLevel changes the logger's
// level in place; without it the change waits for the next start.
func (a *Agent) SetLogLevel(level string) error {
	if a.deps.SetLogLevel == nil {
		return reload.ErrNeedsRestart
	}
	if err := a.deps.SetLogLevel(level); err != nil {
		return err
	}
	a.log.Info("log level changed", "level", level)
	return nil
}
