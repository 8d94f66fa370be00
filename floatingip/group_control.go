package floatingip

import (
	"context"
	"fmt"
	"time"
)

// Drain hands the group's addresses to a healthy peer when this member
// holds them (see Handover) and keeps the member out of candidacy until
// Resume or a restart: `hc-agent handover` for maintenance without stopping
// the daemon. A holder that no peer could take over from keeps its
// addresses, is not drained and gets an error wrapping ErrNoPeer. Status
// reports a drained member as Drained.
func (g *Group) Drain(ctx context.Context) error {
	if err := g.Handover(ctx); err != nil {
		return fmt.Errorf("drain group %s: %w", g.cfg.Name, err)
	}
	g.mu.Lock()
	g.drained = true
	g.mu.Unlock()
	g.log.Info("drained: out of candidacy until resumed")
	return nil
}

// Resume makes a drained member a candidate again. It does nothing for a
// member that is not drained, and never interrupts a hand-over in progress.
func (g *Group) Resume() {
	g.mu.Lock()
	was := g.drained
	g.drained = false
	if was && len(g.handoverDones) == 0 {
		g.draining = false
	}
	g.mu.Unlock()
	if !was {
		return
	}
	g.log.Info("resumed: a candidate again")
	g.publish()
	g.Refresh() // wakes the loop, which decides again
}

// Settings are the settings a running group takes in place on reload.
type Settings struct {
	Priority          int
	Preempt           bool
	PreemptDelay      time.Duration
	MaxMovesPerMinute int
	// ExpectedSize is the group size including self (peers plus one).
	ExpectedSize int
}

// Update applies s to the running group: the next decision and the next
// gossip update use it; what the member holds stays. Peers learn a new
// priority from the gossip metadata at once.
func (g *Group) Update(s Settings) error {
	if s.MaxMovesPerMinute < 1 || s.ExpectedSize < 1 || s.PreemptDelay < 0 {
		return fmt.Errorf("update group %s: invalid settings %+v", g.cfg.Name, s)
	}
	g.mu.Lock()
	changed := g.cfg.Priority != s.Priority
	g.cfg.Priority, g.cfg.Preempt, g.cfg.PreemptDelay = s.Priority, s.Preempt, s.PreemptDelay
	g.cfg.MaxMovesPerMinute, g.cfg.ExpectedSize = s.MaxMovesPerMinute, s.ExpectedSize
	g.mu.Unlock()
	g.log.Info("settings updated", "priority", s.Priority, "preempt", s.Preempt, "preempt_delay", s.PreemptDelay,
		"max_moves_per_minute", s.MaxMovesPerMinute, "expected_size", s.ExpectedSize)
	if changed {
		g.publish()
	}
	g.Refresh()
	return nil
}

// SetHealth replaces the group's health check in place (a reload): the
// member's current health stays until the new check's rise or fall says
// otherwise, and what it holds stays.
func (g *Group) SetHealth(c HealthConfig) error {
	probe, err := NewProbe(c)
	if err != nil {
		return fmt.Errorf("set health check of group %s: %w", g.cfg.Name, err)
	}
	if err := c.validate(); err != nil {
		return fmt.Errorf("set health check of group %s: %w", g.cfg.Name, err)
	}
	g.health.Set(probe, c)
	g.mu.Lock()
	g.cfg.Health = c
	g.mu.Unlock()
	g.log.Info("health check updated", "type", c.Type, "interval", c.Interval, "rise", c.Rise, "fall", c.Fall)
	return nil
}
