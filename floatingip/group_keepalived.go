package floatingip

import (
	"context"
	"time"
)

// runKeepalived follows keepalived's ordered notify events: MASTER takes the
// floating IPs through the API, every other state steps down.
func (g *Group) runKeepalived(ctx context.Context, notify <-chan NotifyEvent) error {
	refresh := time.NewTimer(g.jitter(g.cfg.RefreshInterval))
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return g.shutdown()
		case e := <-notify:
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
				g.stepDown(ctx, stepDownKeepalived, "state", e.State)
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
