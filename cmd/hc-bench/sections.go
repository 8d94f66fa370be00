package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/bench/footprint"
	"github.com/hc-agent/hc-agent/internal/bench/scenario"
)

// section is one numbered item of the benchmark.
type section struct {
	id, title string
	run       func(ctx context.Context, h *harness) bench.Section
}

// sections are run in this order. Failover runs before hand-over because
// both come from the same clusters (see harness.outages).
var sections = []section{
	{"failover", "Client-visible failover outage after a holder crash", runFailover},
	{"handover", "Planned hand-over outage (SIGTERM of the holder)", runHandover},
	{"pause", "A sub-second pause of the holder (live migration) moves nothing", runPause},
	{"privatevip", "Private VIP failover outage after a holder crash (alias and route)", runPrivateVIP},
	{"boot", "Boot to configured", runBoot},
	{"hotplug", "Hotplug: NIC appears to configured", runHotplug},
	{"storm", "Boot storm: a fleet booting from one image at once", runStorm},
	{"api", "API requests per server per hour in steady state", runAPI},
	{"footprint", "Footprint of an idle agent", runFootprint},
	{"restore", "Restore after external deletion", runRestore},
	{"blackhole", "Metadata black hole at boot", runBlackhole},
}

func sectionIDs() []string {
	ids := make([]string, len(sections))
	for i, s := range sections {
		ids[i] = s.id
	}
	return ids
}

// Action latencies of the simulator for the failover trials: realistic, and
// zero to show the agent's own overhead.
var failoverDelays = []time.Duration{time.Second, 0}

// harness holds what the sections share: the options, the scratch
// directory, the hc-agent binary, and the outage results (failover and
// hand-over are measured on the same clusters).
type harness struct {
	o        options
	dir      string
	agentBin string
	buildErr error
	outages  map[string]*scenario.Outages // by subject
}

func newHarness(ctx context.Context, o options) (*harness, error) {
	dir, err := os.MkdirTemp("", "hc-bench-")
	if err != nil {
		return nil, fmt.Errorf("create scratch directory: %w", err)
	}
	h := &harness{o: o, dir: dir, agentBin: o.agentBin, outages: map[string]*scenario.Outages{}}
	if h.agentBin == "" {
		h.agentBin = filepath.Join(dir, "hc-agent")
		h.buildErr = footprint.Build(ctx, o.goTool, o.src, "./cmd/hc-agent", h.agentBin)
	}
	return h, nil
}

func (h *harness) close() {
	if h.o.keep {
		h.o.log.Warn("scratch directory kept", "dir", h.dir)
		return
	}
	_ = os.RemoveAll(h.dir)
}

func (h *harness) env() scenario.Env {
	return scenario.Env{AgentBin: h.agentBin, WorkDir: h.dir, Log: h.o.log, Trials: h.o.trials, Quick: h.o.quick, ProfileDir: h.o.profile}
}

// needRoot returns why the simulated cloud cannot run, or "".
func (h *harness) needRoot() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces); run `sudo make bench`"
	}
	return ""
}

// needAgent returns why hc-agent cannot run, or "".
func (h *harness) needAgent() string {
	if r := h.needRoot(); r != "" {
		return r
	}
	if h.buildErr != nil {
		return "hc-agent does not build: " + h.buildErr.Error()
	}
	return ""
}

// outagesOf runs (once) the outage scenarios of subject: crash trials with
// each failover delay, then hand-over trials.
func (h *harness) outagesOf(ctx context.Context, subject string) *scenario.Outages {
	if r, ok := h.outages[subject]; ok {
		return r
	}
	if subject == bench.SubjectKeepalived && h.o.noBaseline {
		r := &scenario.Outages{}
		h.outages[subject] = r
		return r
	}
	handover := len(h.o.only) == 0 || contains(h.o.only, "handover")
	delays := failoverDelays
	if len(h.o.only) > 0 && !contains(h.o.only, "failover") {
		delays = failoverDelays[:1] // the cluster is built with the first delay
		r := scenario.RunOutages(ctx, h.env(), subject, delays, handover)
		r.Crash = nil
		h.outages[subject] = &r
		return &r
	}
	r := scenario.RunOutages(ctx, h.env(), subject, delays, handover)
	h.outages[subject] = &r
	return &r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

const outageMethod = "three servers in one private network, the floating IP served by a name service on each; " +
	"a client namespace requests the floating IP every 10 ms (250 ms timeout each); " +
	"outage = longest run of failed requests, from the first failed request to the first answered one; " +
	"the holder alternates as crashed servers are restored and rejoin"

func runFailover(ctx context.Context, h *harness) bench.Section {
	sec := bench.Section{Method: "Cloud.Crash of the holder (links down, every process SIGKILLed); " + outageMethod +
		"; keepalived: Debian keepalived 2.2.7, unicast VRRP, advert_int 1, nopreempt, notify_master script with curl that assigns and polls the action every 1 s"}
	if r := h.needRoot(); r != "" {
		sec.Unavailable = r
		return sec
	}
	var agent *scenario.Outages
	if r := h.needAgent(); r != "" {
		sec.Notes = append(sec.Notes, "hc-agent not available: "+r)
	} else {
		agent = h.outagesOf(ctx, bench.SubjectAgent)
	}
	base := h.outagesOf(ctx, bench.SubjectKeepalived)
	for _, d := range failoverDelays {
		kase := "action latency " + d.String()
		var a, k *bench.Summary
		if agent != nil {
			if s, ok := agent.Crash[d]; ok {
				a = &s
				sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectAgent, kase, s))
			}
		}
		if s, ok := base.Crash[d]; ok {
			k = &s
			sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectKeepalived, kase, s))
		}
		sec.Rows = append(sec.Rows, ratioRows(kase, a, k)...)
		if agent != nil {
			for _, p := range scenario.PhaseOrder {
				if s, ok := agent.Phases[d][p]; ok {
					sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectAgent, kase+", phase "+p, s))
				}
			}
		}
	}
	if agent != nil && agent.Err != nil {
		sec.Notes = append(sec.Notes, "hc-agent: "+agent.Err.Error())
	}
	if base.Err != nil {
		sec.Notes = append(sec.Notes, "keepalived: "+base.Err.Error())
	}
	if agent != nil && len(agent.Phases) > 0 {
		sec.Notes = append(sec.Notes, "hc-agent phases, from the new holder's last_move timeline: detection = crash to the failure seen; "+
			"then decision, configured (address on the host), assign_requested (after the arbiter's fresh read), action_succeeded (action polled as success), verified (fresh read shows the new holder)")
	}
	sec.Notes = append(sec.Notes, resetNotes(agent, base, "crash")...)
	if len(sec.Rows) == 0 {
		sec.Unavailable = "no trial completed; see notes"
	}
	return sec
}

// resetNotes reports how often a cluster was found inconsistent before a
// trial (not counted as a trial) and rebuilt.
func resetNotes(agent, base *scenario.Outages, kind string) []string {
	var notes []string
	for _, x := range []struct {
		name string
		r    *scenario.Outages
	}{{bench.SubjectAgent, agent}, {bench.SubjectKeepalived, base}} {
		if x.r != nil && x.r.Resets[kind] > 0 {
			notes = append(notes, fmt.Sprintf("%s: the cluster was found inconsistent %d time(s) before a trial "+
				"(floating IP not served by the API's holder) and was reset; those are not counted as trials", x.name, x.r.Resets[kind]))
		}
	}
	return notes
}

// ratioRows returns keepalived/hc-agent ratios of p50 and p95 when both
// were measured.
func ratioRows(kase string, agent, base *bench.Summary) []bench.Row {
	if agent == nil || base == nil || agent.N == 0 || base.N == 0 {
		return nil
	}
	return []bench.Row{
		bench.ValueRow(bench.SubjectRatio, kase+", p50 keepalived/hc-agent", bench.Ratio(base.P50, agent.P50), "×"),
		bench.ValueRow(bench.SubjectRatio, kase+", p95 keepalived/hc-agent", bench.Ratio(base.P95, agent.P95), "×"),
	}
}

func runHandover(ctx context.Context, h *harness) bench.Section {
	sec := bench.Section{Method: "SIGTERM to the holder's hc-agent (it hands over before exiting) or keepalived (priority 0 advertisement), action latency 1s; " + outageMethod + "; 0 means no request failed"}
	if r := h.needRoot(); r != "" {
		sec.Unavailable = r
		return sec
	}
	var a, k *bench.Summary
	if r := h.needAgent(); r != "" {
		sec.Notes = append(sec.Notes, "hc-agent not available: "+r)
	} else if res := h.outagesOf(ctx, bench.SubjectAgent); res.Handover != nil {
		a = res.Handover
		sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectAgent, "SIGTERM", *a))
		if res.Err != nil {
			sec.Notes = append(sec.Notes, "hc-agent: "+res.Err.Error())
		}
	} else if res.Err != nil {
		sec.Notes = append(sec.Notes, "hc-agent: "+res.Err.Error())
	}
	if res := h.outagesOf(ctx, bench.SubjectKeepalived); res.Handover != nil {
		k = res.Handover
		sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectKeepalived, "SIGTERM", *k))
	} else if res.Err != nil {
		sec.Notes = append(sec.Notes, "keepalived: "+res.Err.Error())
	}
	sec.Notes = append(sec.Notes, resetNotes(h.outages[bench.SubjectAgent], h.outages[bench.SubjectKeepalived], "handover")...)
	if a != nil && k != nil && a.N > 0 && k.N > 0 && a.P50 > 0 {
		sec.Rows = append(sec.Rows, ratioRows("SIGTERM", a, k)...)
	}
	if len(sec.Rows) == 0 {
		sec.Unavailable = "no trial completed; see notes"
	}
	return sec
}

func runBoot(ctx context.Context, h *harness) bench.Section {
	sec := bench.Section{Method: "one server with N private networks and a floating IP assigned to it; from starting `hc-agent run` " +
		"to every private NIC having its address and network route and the floating IP being on the public NIC, read from the kernel every 2 ms; " +
		"between trials the agent is stopped, the NICs flushed and downed, its state removed; keepalived does not configure private networks"}
	if r := h.needAgent(); r != "" {
		sec.Unavailable = r
		return sec
	}
	for _, n := range []int{1, 10} {
		s, err := scenario.RunBoot(ctx, h.env(), n)
		if s.N > 0 || s.Failed > 0 {
			sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectAgent, fmt.Sprintf("%d network(s) + 1 floating IP", n), s))
		}
		if err != nil {
			sec.Notes = append(sec.Notes, fmt.Sprintf("%d networks: %v", n, err))
		}
	}
	if len(sec.Rows) == 0 {
		sec.Unavailable = "no trial completed; see notes"
	}
	return sec
}

func runHotplug(ctx context.Context, h *harness) bench.Section {
	return agentDurationSection(ctx, h, "hc-agent running on a configured server; the simulator attaches a private network (NIC and metadata appear together); "+
		"from the attach to the new NIC's address and network route being in the kernel, read every 2 ms; detached again between trials",
		"attach network", scenario.RunHotplug)
}

// agentDurationSection is a section of one hc-agent duration row measured
// by run (see agentDurationsSection).
func agentDurationSection(ctx context.Context, h *harness, method, kase string, run func(context.Context, scenario.Env) (bench.Summary, error)) bench.Section {
	return agentDurationsSection(ctx, h, method, func(ctx context.Context, env scenario.Env) ([]durationCase, error) {
		s, err := run(ctx, env)
		return []durationCase{{kase, s}}, err
	})
}

// durationCase is one row of agentDurationsSection.
type durationCase struct {
	kase string
	s    bench.Summary
}

// agentDurationsSection is a section of hc-agent duration rows measured by
// run, one per case that measured anything; a failed run's error becomes a
// note, or the reason the section is unavailable when it measured nothing.
func agentDurationsSection(ctx context.Context, h *harness, method string, run func(context.Context, scenario.Env) ([]durationCase, error)) bench.Section {
	sec := bench.Section{Method: method}
	if r := h.needAgent(); r != "" {
		sec.Unavailable = r
		return sec
	}
	cases, err := run(ctx, h.env())
	for _, c := range cases {
		if c.s.N > 0 || c.s.Failed > 0 {
			sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectAgent, c.kase, c.s))
		}
	}
	if err != nil {
		sec.Notes = append(sec.Notes, err.Error())
		if len(sec.Rows) == 0 {
			sec.Unavailable = err.Error()
		}
	}
	return sec
}

// Boot storm size (issue 14): 50 servers, three of them in a failover group.
const (
	stormServers = 50
	stormGrouped = 3
)

func runStorm(ctx context.Context, h *harness) bench.Section {
	window := time.Minute
	if h.o.quick {
		window = 20 * time.Second
	}
	sec := bench.Section{Method: fmt.Sprintf("%d servers with one private network each, all starting hc-agent at once (spawned one after another as fast as the harness can); "+
		"the first %d form a failover group around one floating IP assigned to the first, the others have no group; every agent runs its private-network "+
		"reconciler and floating IP manager with the defaults; configured = the private NIC's address and network route (and the floating IP on the holder) "+
		"in the kernel, polled every 20 ms per server, from the start of the storm; API requests and 429s of the whole fleet in the first %v, counted by the "+
		"simulator (one project bucket of 3600/h)", stormServers, stormGrouped, window)}
	if r := h.needAgent(); r != "" {
		sec.Unavailable = r
		return sec
	}
	res, err := scenario.RunStorm(ctx, h.env(), stormServers, stormGrouped, window)
	if res.Configured.N > 0 || res.Configured.Failed > 0 {
		sec.Rows = append(sec.Rows,
			bench.DurationRow(bench.SubjectAgent, fmt.Sprintf("%d servers: storm start to configured", res.Servers), res.Configured),
			bench.DurationRow(bench.SubjectAgent, fmt.Sprintf("%d servers: own agent start to configured", res.Servers), res.OwnStart),
			bench.ValueRow(bench.SubjectAgent, "spawning every agent", res.Spawn.Seconds(), "s"),
			bench.ValueRow(bench.SubjectAgent, fmt.Sprintf("API requests of the fleet in the first %v", res.Window), float64(res.Requests), "req"),
			bench.ValueRow(bench.SubjectAgent, fmt.Sprintf("429 responses in the first %v", res.Window), float64(res.RateLimited), "req"),
		)
	}
	if err != nil {
		sec.Notes = append(sec.Notes, err.Error())
		if len(sec.Rows) == 0 {
			sec.Unavailable = err.Error()
		}
	}
	sec.Notes = append(sec.Notes, "limits: 2 cores for every agent, the simulated cloud and the harness; the simulated cloud holds at most 200 servers "+
		"(one namespace and veth pair per server and network, one shared metadata service and API simulator answering per caller)")
	return sec
}

func runAPI(ctx context.Context, h *harness) bench.Section {
	scale, wall := 60.0, time.Minute
	if h.o.quick {
		scale, wall = 180, 20*time.Second
	}
	sec := bench.Section{Method: fmt.Sprintf("a settled group of three agents and a fourth server without groups, with poll intervals divided by %g, "+
		"so %v of wall time is one simulated hour; the API simulator counts each server's requests (one token per server), "+
		"scaled back to one real hour; the project budget is %d requests per hour", scale, wall, bench.ProjectBudgetPerHour)}
	if r := h.needAgent(); r != "" {
		sec.Unavailable = r
		return sec
	}
	res, err := scenario.RunBudget(ctx, h.env(), scale, wall)
	if err != nil {
		sec.Unavailable = err.Error()
		return sec
	}
	for i, b := range res.PerServer {
		who := res.Roles[i]
		if res.Modes[i] != "" {
			who += ", manager " + res.Modes[i]
		}
		sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, fmt.Sprintf("srv%d (%s) requests/hour", i+1, who), b.PerHour, "req/h"))
	}
	sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, fmt.Sprintf("group of %d together requests/hour", res.GroupSize), res.Group.PerHour, "req/h"))
	servers := "unbounded (no steady-state requests)"
	if res.Max.Servers > 0 {
		servers = fmt.Sprint(res.Max.Servers)
	}
	sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, "max requests/hour of one server", res.Max.PerHour, "req/h"))
	if res.Max.PerHour > 0 {
		sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, "servers per project budget", float64(res.Max.Servers), "servers"))
	}
	sec.Notes = append(sec.Notes, "scaled: "+res.Intervals, "servers one project's 3600/h supports at the busiest server's rate: "+servers,
		"only intervals from the configuration are scaled; a fixed timer inside the agent would be undercounted by the scale factor: "+
			"the holder's re-read of the group's assignments (every 5 min, jittered; config.DefaultGroupRefreshInterval, not a configuration key) "+
			"is such a timer, so the holder's row lacks its 12 requests per real hour; standbys make no such read (one reader per group)",
		"one reader per group: only the holder's floating IP manager lists the floating IPs every api.poll_interval and advertises a digest of its read in the "+
			"group's gossip; a standby's manager (follower) reads at start, on a trigger and once when the holder's digest changes to one it has not read, "+
			"so the group's row does not grow with its size; the server without groups reads every api.poll_interval",
		"keepalived's baseline makes no steady-state API requests (it only calls the API on a transition)")
	return sec
}

// holderPause is the pause issue 14 requires to move nothing: Hetzner
// live-migrates with pauses of under a second.
const holderPause = 800 * time.Millisecond

func runPause(ctx context.Context, h *harness) bench.Section {
	trials := 10
	if h.o.quick {
		trials = 3
	}
	sec := bench.Section{Method: fmt.Sprintf("the trio of the outage figures running hc-agent (action latency 1s); every process in the holder's namespace "+
		"is stopped (SIGSTOP) for %v and continued, then for %v the harness watches whether the floating IP leaves the holder or a standby records a move; "+
		"%d trials", holderPause, scenario.PauseObserve, trials)}
	if r := h.needAgent(); r != "" {
		sec.Unavailable = r
		return sec
	}
	res, err := scenario.RunPause(ctx, h.env(), holderPause, time.Second, trials)
	if res.Trials > 0 {
		sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, fmt.Sprintf("trials with a move after a %v pause (of %d)", holderPause, res.Trials), float64(res.Moved), "trials"))
	}
	if err != nil {
		sec.Notes = append(sec.Notes, err.Error())
		if res.Trials == 0 {
			sec.Unavailable = err.Error()
		}
	}
	return sec
}

func runFootprint(ctx context.Context, h *harness) bench.Section {
	// The warm-up outlasts the agent's release of its start-up memory
	// (READY=1 + 20 s), so that the window sees the idle agent.
	warmup, window := 30*time.Second, time.Minute
	if h.o.quick {
		warmup, window = 0, 10*time.Second
	}
	sec := bench.Section{Method: fmt.Sprintf("settled group of three agents with the default configuration and one HTTP health check (%s); "+
		"VmRSS and RssAnon (the rest is mostly the binary's pages, shared with the page cache) from /proc/PID/status, utime+stime from /proc/PID/stat and the context switches of all threads from /proc/PID/task/*/status "+
		"sampled every second over %v, from %v after the group settled; binary: CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" ./cmd/hc-agent", scenario.FootprintHealthTarget, window, warmup)}
	if h.o.quick {
		sec.Notes = append(sec.Notes, "quick run: no warm-up (start-up memory not yet released), window shortened to 10 s")
	}
	if h.buildErr != nil {
		sec.Notes = append(sec.Notes, "binary size not available: "+h.buildErr.Error())
	} else if fi, err := os.Stat(h.agentBin); err == nil {
		row := bench.ValueRow(bench.SubjectAgent, "binary size", float64(fi.Size())/(1<<20), "MiB")
		if h.o.agentBin != "" {
			row.Note = "given with --agent, may not be a stripped build"
		}
		sec.Rows = append(sec.Rows, row)
	}
	if r := h.needAgent(); r != "" {
		sec.Notes = append(sec.Notes, "idle footprint not available: "+r)
		return sec
	}
	res, err := scenario.RunFootprint(ctx, h.env(), warmup, window)
	if err != nil {
		sec.Notes = append(sec.Notes, "idle footprint of a group member not available: "+err.Error())
		return sec
	}
	for _, x := range []struct {
		role string
		r    footprint.Result
	}{{"holder", res.Holder}, {"standby", res.Standby}} {
		sec.Rows = append(sec.Rows,
			bench.ValueRow(bench.SubjectAgent, x.role+" RSS (max)", float64(x.r.RSSMax)/(1<<20), "MiB"),
			bench.ValueRow(bench.SubjectAgent, x.role+" RSS anonymous part (max)", float64(x.r.RSSAnonMax)/(1<<20), "MiB"),
			bench.ValueRow(bench.SubjectAgent, x.role+" CPU (of one core)", x.r.CPUPercent, "%"),
			bench.ValueRow(bench.SubjectAgent, x.role+" CPU time per minute", x.r.CPUSeconds*60/x.r.Window.Seconds(), "s"),
			bench.ValueRow(bench.SubjectAgent, x.role+" wakeups (context switches)", x.r.Wakeups, "/s"),
		)
	}
	return sec
}
