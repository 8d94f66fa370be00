package agent

import "context"

// checkMetadataRoute runs Deps.CheckMetadataRoute, records the black hole in
// the metric and logs it when it appears or goes, as report does for
// netconf's reconciles. It returns the hint for a failed metadata read.
func (a *Agent) checkMetadataRoute(ctx context.Context) string {
	if a.deps.CheckMetadataRoute == nil {
		return ""
	}
	bh, hint := a.deps.CheckMetadataRoute(ctx)
	a.mu.Lock()
	changed := a.blackholed != bh
	a.blackholed = bh
	a.mu.Unlock()
	a.metrics.SetBlackholed(bh)
	switch {
	case changed && bh:
		a.log.Warn("metadata black hole: a route sends 169.254.169.254 through a private network gateway", "hint", hint)
	case changed:
		a.log.Info("metadata black hole gone")
	}
	return hint
}
