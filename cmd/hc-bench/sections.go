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
	{"privatevip", "Private VIP failover outage after a holder crash (alias and route)", runPrivateVIP},
	{"boot", "Boot to configured", runBoot},
	{"hotplug", "Hotplug: NIC appears to configured", runHotplug},
	{"api", "API requests per server per hour in steady state", runAPI},
	{"footprint", "Footprint of an idle agent", runFootprint},
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
	return scenario.Env{AgentBin: h.agentBin, WorkDir: h.dir, Log: h.o.log, Trials: h.o.trials, Quick: h.o.quick}
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
	}
	if agent != nil && agent.Err != nil {
		sec.Notes = append(sec.Notes, "hc-agent: "+agent.Err.Error())
	}
	if base.Err != nil {
		sec.Notes = append(sec.Notes, "keepalived: "+base.Err.Error())
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
	sec := bench.Section{Method: "hc-agent running on a configured server; the simulator attaches a private network (NIC and metadata appear together); " +
		"from the attach to the new NIC's address and network route being in the kernel, read every 2 ms; detached again between trials"}
	if r := h.needAgent(); r != "" {
		sec.Unavailable = r
		return sec
	}
	s, err := scenario.RunHotplug(ctx, h.env())
	if s.N > 0 || s.Failed > 0 {
		sec.Rows = append(sec.Rows, bench.DurationRow(bench.SubjectAgent, "attach network", s))
	}
	if err != nil {
		sec.Notes = append(sec.Notes, err.Error())
		if len(sec.Rows) == 0 {
			sec.Unavailable = err.Error()
		}
	}
	return sec
}

func runAPI(ctx context.Context, h *harness) bench.Section {
	scale, wall := 60.0, time.Minute
	if h.o.quick {
		scale, wall = 180, 20*time.Second
	}
	sec := bench.Section{Method: fmt.Sprintf("a settled group of three agents with poll intervals divided by %g, "+
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
		sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, fmt.Sprintf("srv%d requests/hour", i+1), b.PerHour, "req/h"))
	}
	servers := "unbounded (no steady-state requests)"
	if res.Max.Servers > 0 {
		servers = fmt.Sprint(res.Max.Servers)
	}
	sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, "max requests/hour of one server", res.Max.PerHour, "req/h"))
	if res.Max.PerHour > 0 {
		sec.Rows = append(sec.Rows, bench.ValueRow(bench.SubjectAgent, "servers per project budget", float64(res.Max.Servers), "servers"))
	}
	sec.Notes = append(sec.Notes, "scaled: "+res.Intervals, "servers one project's 3600/h supports at the busiest server's rate: "+servers,
		"only intervals from the configuration are scaled; a fixed timer inside the agent would be undercounted by the scale factor",
		"keepalived's baseline makes no steady-state API requests (it only calls the API on a transition)")
	return sec
}

func runFootprint(ctx context.Context, h *harness) bench.Section {
	window := time.Minute
	if h.o.quick {
		window = 10 * time.Second
	}
	sec := bench.Section{Method: fmt.Sprintf("settled group of three agents with the default configuration; VmRSS from /proc/PID/status "+
		"and utime+stime from /proc/PID/stat sampled every second over %v; binary: CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\" ./cmd/hc-agent", window)}
	if h.o.quick {
		sec.Notes = append(sec.Notes, "quick run: window shortened to 10 s")
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
	res, err := scenario.RunFootprint(ctx, h.env(), window)
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
			bench.ValueRow(bench.SubjectAgent, x.role+" CPU (of one core)", x.r.CPUPercent, "%"),
			bench.ValueRow(bench.SubjectAgent, x.role+" CPU time per minute", x.r.CPUSeconds*60/x.r.Window.Seconds(), "s"),
		)
	}
	return sec
}
