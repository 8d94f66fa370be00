package agent

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"time"

	"github.com/hc-agent/hc-agent/metrics"
)

// Status is the /status document. `hc-agent status` decodes it.
type Status struct {
	Version       string    `json:"version"`
	Commit        string    `json:"commit,omitempty"`
	GoVersion     string    `json:"go_version"`
	InstanceID    int64     `json:"instance_id,omitempty"`
	Hostname      string    `json:"hostname,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Ready is true once the first reconcile succeeded.
	Ready bool `json:"ready"`
	// Phase is the agent's phase: starting, waiting for the metadata
	// service, running, stopping.
	Phase string `json:"phase"`
	// Status is the line also sent to systemd as STATUS=.
	Status             string `json:"status"`
	MetadataBlackholed bool   `json:"metadata_blackholed"`
	// Components holds the last reconcile of each component.
	Components map[string]ComponentStatus `json:"components"`
	// Groups holds each failover group's own status document.
	Groups []any `json:"groups"`
}

// ComponentStatus is the last reconcile of one component.
type ComponentStatus struct {
	LastRun         time.Time `json:"last_run"`
	LastSuccess     time.Time `json:"last_success,omitzero"`
	DurationSeconds float64   `json:"duration_seconds"`
	Changes         int       `json:"changes"`
	Error           string    `json:"error,omitempty"`
	// Mode is how the component runs now, when it says (SetCadence): the
	// floating IP manager is "reader" (reads every api.poll_interval) or
	// "follower" (a standby that follows the group holder's reads).
	Mode string `json:"mode,omitempty"`
}

// Status returns the agent's current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := Status{
		Version:            a.deps.Build.Version,
		Commit:             a.deps.Build.Commit,
		GoVersion:          runtime.Version(),
		InstanceID:         a.summary.InstanceID,
		Hostname:           a.summary.Hostname,
		StartedAt:          a.started.UTC(),
		Ready:              a.ready,
		Phase:              a.phase,
		Status:             a.statusLineLocked(),
		MetadataBlackholed: a.blackholed,
		Components:         make(map[string]ComponentStatus, len(a.components)),
		Groups:             make([]any, 0, len(a.groups)),
	}
	if !a.started.IsZero() {
		st.UptimeSeconds = a.deps.Now().Sub(a.started).Seconds()
	}
	for n, c := range maps.All(a.components) {
		st.Components[n] = ComponentStatus{
			LastRun:         c.LastRun.UTC(),
			LastSuccess:     c.LastSuccess.UTC(),
			DurationSeconds: c.Duration,
			Changes:         c.Changes,
			Error:           c.Error,
			Mode:            c.Mode,
		}
	}
	for _, g := range a.groups {
		st.Groups = append(st.Groups, g.Status())
	}
	return st
}

// Health is /healthz: nil when the agent is ready and every component's
// last reconcile succeeded recently enough.
func (a *Agent) Health() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ready {
		return errors.New(a.phase)
	}
	now := a.deps.Now()
	var errs []error
	for n, c := range a.components {
		if c.Error != "" {
			errs = append(errs, fmt.Errorf("%s: %s", n, c.Error))
			continue
		}
		stale := a.deps.StaleAfter
		switch {
		case c.LastRun.IsZero():
			continue // a cadence before the first run: not a component failing yet
		case c.Mode != "" && c.Period == 0:
			continue // it runs on events only: no run for long is no sign of trouble
		case c.Mode != "":
			stale = max(stale, 2*c.Period)
		}
		if age := now.Sub(c.LastRun); age > stale {
			errs = append(errs, fmt.Errorf("%s: no reconcile for %s", n, age.Round(time.Second)))
		}
	}
	return errors.Join(errs...)
}

// SetCadence is called by a component whenever its way of running
// changes: mode names it for /status, period is the longest time between
// two of its reports in that mode (0: it runs only on events). /healthz
// then finds the component stale only after max(StaleAfter, 2·period),
// or never for 0; without a cadence, after StaleAfter. The floating IP
// manager reads every api.poll_interval (20 m by default, longer than
// StaleAfter), or, as a standby that follows its group's holder, only on
// events (issue 14).
func (a *Agent) SetCadence(component, mode string, period time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cs := a.components[component]
	if cs == nil {
		cs = &componentState{}
		a.components[component] = cs
	}
	cs.Mode, cs.Period = mode, period
}

// Handler serves /metrics, /healthz and /status for this agent.
func (a *Agent) Handler() http.Handler {
	return metrics.Handler(a.deps.Registry, a.Health, func() any { return a.Status() })
}
