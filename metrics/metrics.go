// Package metrics defines hc-agent's Prometheus collectors on a private
// registry and the HTTP listener that serves them together with /healthz and
// /status.
//
// Every metric carries the hcagent_ prefix, uses base units and has bounded
// labels: components are constants, group names and floating IP addresses come
// from the configuration, API endpoints are route templates and codes are
// HTTP status codes.
package metrics

import (
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Roles a failover group member can have (floatingip.Role values). SetGroup
// exports one series per role so that a dashboard can show the current one
// and alerts can count holders.
var Roles = []string{"holder", "candidate", "standby", "stepping-down"}

// BuildInfo describes the running binary for hcagent_build_info.
type BuildInfo struct {
	Version string
	Commit  string
}

// Metrics holds every hc-agent collector. Its methods are safe for
// concurrent use. A nil *Metrics records nothing, so components can be built
// without metrics in tests.
type Metrics struct {
	buildInfo *prometheus.GaugeVec
	startTime prometheus.Gauge

	metadataRequests *prometheus.CounterVec
	metadataErrors   *prometheus.CounterVec
	blackholed       prometheus.Gauge

	reconcileRuns     *prometheus.CounterVec
	reconcileErrors   *prometheus.CounterVec
	reconcileDuration *prometheus.HistogramVec
	reconcileLast     *prometheus.GaugeVec
	netlinkChanges    *prometheus.CounterVec
	restores          *prometheus.CounterVec
	restoreBackoffs   *prometheus.CounterVec

	apiRequests    *prometheus.CounterVec
	apiRateLimited prometheus.Counter
	apiRemaining   prometheus.Gauge
	apiLimit       prometheus.Gauge

	fipConfigured *prometheus.GaugeVec
	fipAssigned   *prometheus.GaugeVec
	vipConfigured *prometheus.GaugeVec
	vipAssigned   *prometheus.GaugeVec

	groupRole      *prometheus.GaugeVec
	groupAlive     *prometheus.GaugeVec
	groupHealthy   *prometheus.GaugeVec
	groupMoves     *prometheus.CounterVec
	groupFailover  *prometheus.HistogramVec
	groupPhase     *prometheus.HistogramVec
	gossipDecrypt  *prometheus.CounterVec
	watchdogPings  prometheus.Counter
	ready          prometheus.Gauge
	now            func() time.Time
	includeRuntime bool
}

// Option configures New.
type Option func(*Metrics)

// WithRuntimeCollectors also registers the Go runtime and process
// collectors (go_*, process_*). The daemon uses it; tests that compare exact
// output do not.
func WithRuntimeCollectors() Option { return func(m *Metrics) { m.includeRuntime = true } }

// WithClock sets the clock used for timestamps (default time.Now).
func WithClock(now func() time.Time) Option { return func(m *Metrics) { m.now = now } }

// New creates the collectors and registers them on reg. It panics if a
// collector is already registered on reg, as registering twice is a
// programming error.
func New(reg prometheus.Registerer, info BuildInfo, opts ...Option) *Metrics {
	m := &Metrics{now: time.Now}
	for _, o := range opts {
		o(m)
	}
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_build_info",
		Help: "Build information of the running hc-agent; always 1.",
	}, []string{"version", "commit", "goversion"})
	m.startTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hcagent_start_time_seconds",
		Help: "Unix time at which the agent started.",
	})
	m.ready = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hcagent_ready",
		Help: "1 once the first reconcile succeeded and the agent told systemd it is ready.",
	})
	m.watchdogPings = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hcagent_watchdog_pings_total",
		Help: "Watchdog keep-alives sent to systemd from the reconcile loop.",
	})
	m.metadataRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_metadata_requests_total",
		Help: "Metadata service reads by document, including failed ones.",
	}, []string{"document"})
	m.metadataErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_metadata_request_errors_total",
		Help: "Metadata service reads by document that failed after all retries.",
	}, []string{"document"})
	m.blackholed = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hcagent_metadata_blackholed",
		Help: "1 when a route sends 169.254.169.254 through a private network gateway (metadata black hole).",
	})
	m.reconcileRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_reconcile_runs_total",
		Help: "Reconcile runs by component.",
	}, []string{"component"})
	m.reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_reconcile_errors_total",
		Help: "Reconcile runs by component that returned an error.",
	}, []string{"component"})
	m.reconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hcagent_reconcile_duration_seconds",
		Help:    "Duration of reconcile runs by component.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"component"})
	m.reconcileLast = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_reconcile_last_success_timestamp_seconds",
		Help: "Unix time of the last successful reconcile by component.",
	}, []string{"component"})
	m.netlinkChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_netlink_changes_total",
		Help: "Netlink writes (address, route or link changes) made by reconciles, by component.",
	}, []string{"component"})
	m.restores = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_netconf_restores_total",
		Help: "Addresses and routes of hc-agent that someone else deleted and hc-agent put back at once, by kind (address, route: private networks; floating_ip, private_vip).",
	}, []string{"kind"})
	m.restoreBackoffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_netconf_restore_backoffs_total",
		Help: "Times hc-agent stopped restoring an address or route for a while because another actor kept deleting it, by kind.",
	}, []string{"kind"})
	m.apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_api_requests_total",
		Help: "Hetzner Cloud API requests by endpoint template and HTTP status code (0: no response).",
	}, []string{"endpoint", "code"})
	m.apiRateLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hcagent_api_rate_limited_total",
		Help: "Hetzner Cloud API responses with status 429 (rate limit exceeded).",
	})
	m.apiRemaining = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hcagent_api_rate_limit_remaining",
		Help: "Requests left in the project's API rate limit window, from the last RateLimit-Remaining header.",
	})
	m.apiLimit = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "hcagent_api_rate_limit_limit",
		Help: "The project's API rate limit per hour, from the last RateLimit-Limit header.",
	})
	m.fipConfigured = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_floating_ip_configured",
		Help: "1 when the floating IP is configured on this server's network interface.",
	}, []string{"ip"})
	m.fipAssigned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_floating_ip_assigned",
		Help: "1 when the API says the floating IP is assigned to this server.",
	}, []string{"ip"})
	m.vipConfigured = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_private_ip_configured",
		Help: "1 when the group's private VIP is configured on this server's private network interface.",
	}, []string{"group", "ip"})
	m.vipAssigned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_private_ip_assigned",
		Help: "1 when the API says the group's private VIP points to this server (alias IP of its attachment, or network route via its private IP).",
	}, []string{"group", "ip"})
	m.groupRole = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_group_role",
		Help: "1 for this server's current role in the failover group, 0 for the other roles.",
	}, []string{"group", "role"})
	m.groupAlive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_group_members_alive",
		Help: "Group members (this server included) that failure detection sees alive.",
	}, []string{"group"})
	m.groupHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hcagent_group_members_healthy",
		Help: "Alive group members whose health check passes (candidates for the floating IPs).",
	}, []string{"group"})
	m.groupMoves = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_group_moves_total",
		Help: "Floating IP moves to this server started by the group, by result (success, error, lost, aborted).",
	}, []string{"group", "result"})
	m.groupFailover = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hcagent_group_failover_duration_seconds",
		Help:    "Time from the decision to take the floating IPs to the API confirming the assignment.",
		Buckets: []float64{.25, .5, 1, 2, 3, 5, 8, 13, 21, 34, 60},
	}, []string{"group"})
	m.groupPhase = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hcagent_group_failover_phase_seconds",
		Help:    "Time of each phase of a successful move, from the previous phase: decision (from the holder failure seen), configured, assign_requested, action_succeeded, verified.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30},
	}, []string{"group", "phase"})
	m.gossipDecrypt = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hcagent_gossip_decrypt_errors_total",
		Help: "Gossip messages of the failover group that no installed key could decrypt (a member with another key).",
	}, []string{"group"})

	cs := []prometheus.Collector{
		m.buildInfo, m.startTime, m.ready, m.watchdogPings,
		m.metadataRequests, m.metadataErrors, m.blackholed,
		m.reconcileRuns, m.reconcileErrors, m.reconcileDuration, m.reconcileLast, m.netlinkChanges,
		m.restores, m.restoreBackoffs,
		m.apiRequests, m.apiRateLimited, m.apiRemaining, m.apiLimit,
		m.fipConfigured, m.fipAssigned, m.vipConfigured, m.vipAssigned,
		m.groupRole, m.groupAlive, m.groupHealthy, m.groupMoves, m.groupFailover, m.groupPhase, m.gossipDecrypt,
	}
	if m.includeRuntime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	reg.MustRegister(cs...)

	m.buildInfo.WithLabelValues(info.Version, info.Commit, runtime.Version()).Set(1)
	m.startTime.Set(float64(m.now().UnixNano()) / 1e9)
	return m
}

// Reconcile components: the values of the component label.
const (
	ComponentNetconf    = "netconf"
	ComponentFloatingIP = "floatingip"
)

// ObserveMetadata records one metadata read of document (summary,
// private-networks, ...) and whether it failed.
func (m *Metrics) ObserveMetadata(document string, err error) {
	if m == nil {
		return
	}
	m.metadataRequests.WithLabelValues(document).Inc()
	if err != nil {
		m.metadataErrors.WithLabelValues(document).Inc()
	}
}

// ObserveReconcile records one reconcile run of component that took d, made
// changes netlink writes and ended with err.
func (m *Metrics) ObserveReconcile(component string, d time.Duration, changes int, err error) {
	if m == nil {
		return
	}
	m.reconcileRuns.WithLabelValues(component).Inc()
	m.reconcileDuration.WithLabelValues(component).Observe(d.Seconds())
	m.netlinkChanges.WithLabelValues(component).Add(float64(changes))
	if err != nil {
		m.reconcileErrors.WithLabelValues(component).Inc()
		return
	}
	m.reconcileLast.WithLabelValues(component).Set(float64(m.now().UnixNano()) / 1e9)
}

// Restore kinds: the values of the kind label. Address and route are the
// private networks'; floating IP and private VIP addresses are the groups'
// and the manager's.
const (
	KindAddress    = "address"
	KindRoute      = "route"
	KindFloatingIP = "floating_ip"
	KindPrivateVIP = "private_vip"
)

// ObserveRestore records that netconf restored an item of kind (a Kind)
// after an external deletion, or, with backedOff, that it stopped
// restoring one because another actor kept deleting it.
func (m *Metrics) ObserveRestore(kind string, backedOff bool) {
	if m == nil {
		return
	}
	if backedOff {
		m.restoreBackoffs.WithLabelValues(kind).Inc()
		return
	}
	m.restores.WithLabelValues(kind).Inc()
}

// SetBlackholed records whether the metadata black-hole route was seen.
func (m *Metrics) SetBlackholed(b bool) {
	if m == nil {
		return
	}
	m.blackholed.Set(b01(b))
}

// SetReady records that the agent reported READY to systemd.
func (m *Metrics) SetReady(b bool) {
	if m == nil {
		return
	}
	m.ready.Set(b01(b))
}

// IncWatchdog counts one watchdog keep-alive.
func (m *Metrics) IncWatchdog() {
	if m == nil {
		return
	}
	m.watchdogPings.Inc()
}

// ObserveAPIRequest records one API request to endpoint (a route template
// such as "POST /floating_ips/{id}/actions/assign", never a raw URL) that
// ended with HTTP status code (0 when there was no response). A 429 also
// counts in hcagent_api_rate_limited_total.
func (m *Metrics) ObserveAPIRequest(endpoint string, code int) {
	if m == nil {
		return
	}
	m.apiRequests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	if code == 429 {
		m.apiRateLimited.Inc()
	}
}

// SetRateLimit records the last RateLimit-Remaining and RateLimit-Limit
// header values.
func (m *Metrics) SetRateLimit(remaining, limit int) {
	if m == nil {
		return
	}
	m.apiRemaining.Set(float64(remaining))
	m.apiLimit.Set(float64(limit))
}

// SetFloatingIP records whether ip is configured on this server and whether
// the API says it is assigned to this server.
func (m *Metrics) SetFloatingIP(ip string, configured, assigned bool) {
	if m == nil {
		return
	}
	m.fipConfigured.WithLabelValues(ip).Set(b01(configured))
	m.fipAssigned.WithLabelValues(ip).Set(b01(assigned))
}

// SetPrivateIP records whether the private VIP ip of group is configured on
// this server and whether the API says it points here. The labels are
// bounded: groups and their private VIPs come from the configuration.
func (m *Metrics) SetPrivateIP(group, ip string, configured, assigned bool) {
	if m == nil {
		return
	}
	m.vipConfigured.WithLabelValues(group, ip).Set(b01(configured))
	m.vipAssigned.WithLabelValues(group, ip).Set(b01(assigned))
}

// DeleteFloatingIP drops the series of a floating IP that is no longer
// managed (it was deleted in the API or left the label selector).
func (m *Metrics) DeleteFloatingIP(ip string) {
	if m == nil {
		return
	}
	m.fipConfigured.DeleteLabelValues(ip)
	m.fipAssigned.DeleteLabelValues(ip)
}

// SetGroup records this server's role in group and how many members are
// alive and healthy. An unknown role is exported as it is, next to the
// known roles at 0.
func (m *Metrics) SetGroup(group, role string, alive, healthy int) {
	m.SetGroupRole(group, role)
	m.SetGroupMembers(group, alive, healthy)
}

// SetGroupRole records this server's role in group.
func (m *Metrics) SetGroupRole(group, role string) {
	if m == nil {
		return
	}
	known := false
	for _, r := range Roles {
		m.groupRole.WithLabelValues(group, r).Set(b01(r == role))
		known = known || r == role
	}
	if !known && role != "" {
		m.groupRole.WithLabelValues(group, role).Set(1)
	}
}

// SetGroupMembers records how many members of group are alive and healthy.
func (m *Metrics) SetGroupMembers(group string, alive, healthy int) {
	if m == nil {
		return
	}
	m.groupAlive.WithLabelValues(group).Set(float64(alive))
	m.groupHealthy.WithLabelValues(group).Set(float64(healthy))
}

// DeleteGroup drops the gauges of a group that stopped (a reload removed
// it), so that it does not linger with its last role and member counts.
// Counters and histograms keep their totals.
func (m *Metrics) DeleteGroup(group string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"group": group}
	m.groupRole.DeletePartialMatch(l)
	m.groupAlive.DeletePartialMatch(l)
	m.groupHealthy.DeletePartialMatch(l)
	m.vipConfigured.DeletePartialMatch(l)
	m.vipAssigned.DeletePartialMatch(l)
}

// ObserveMove records a floating IP move of group with result (success,
// error, lost); a successful move also observes its failover duration d.
func (m *Metrics) ObserveMove(group string, d time.Duration, result string) {
	if m == nil {
		return
	}
	m.groupMoves.WithLabelValues(group, result).Inc()
	if result == "success" {
		m.groupFailover.WithLabelValues(group).Observe(d.Seconds())
	}
}

// ObserveMovePhase records how long phase of a successful move of group
// took (since the phase before it).
func (m *Metrics) ObserveMovePhase(group, phase string, d time.Duration) {
	if m == nil {
		return
	}
	m.groupPhase.WithLabelValues(group, phase).Observe(d.Seconds())
}

// IncGossipDecryptError counts a gossip message of group that did not
// decrypt.
func (m *Metrics) IncGossipDecryptError(group string) {
	if m == nil {
		return
	}
	m.gossipDecrypt.WithLabelValues(group).Inc()
}

func b01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
