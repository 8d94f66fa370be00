package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// Probe settings: a request every 10 ms, each with its own 250 ms timeout,
// so the outage resolution is 10 ms and a black-holed request does not hide
// the moment service returns.
const (
	probeInterval = 10 * time.Millisecond
	probeTimeout  = 250 * time.Millisecond
	// trialTimeout bounds one failover; longer counts as a failed trial.
	trialTimeout = 60 * time.Second
	// groupSize is the number of servers in the outage scenarios: the
	// classic trio (one holder, two standbys) for both subjects.
	groupSize = 3
	// settleTime is the pause between trials once every server runs the
	// subject again: a restarted keepalived has heard several
	// advertisements by then, a notify script has finished polling, and a
	// restarted agent has gossiped with its peers. Without it a trial can
	// start while the restarted member is still fresh, which is not the
	// situation being measured.
	settleTime = 3 * time.Second
)

// disruption is what happens to the holder in an outage trial.
type disruption int

const (
	crash   disruption = iota // Cloud.Crash: links down, every process SIGKILLed
	sigterm                   // SIGTERM to the subject's process only
)

// outageCluster builds the trio, starts the subject on every server and
// waits until srv1 holds the floating IP and serves the probe.
func outageCluster(ctx context.Context, env Env, newSubject func(*cluster) subject, delay time.Duration) (*cluster, subject, error) {
	c, err := newCluster(ctx, env, clusterSpec{servers: groupSize, networks: 1, dhcp: true, holder: 0, actionDelay: delay, names: true})
	if err != nil {
		return nil, nil, err
	}
	sub := newSubject(c)
	if err := bringUp(ctx, c, sub); err != nil {
		c.close()
		return nil, nil, err
	}
	return c, sub, nil
}

// bringUp starts the subject on the first server alone so that it becomes
// the holder (keepalived needs three missed advertisements before it
// declares itself MASTER), waits until it serves the floating IP, then
// starts the others and waits until all have settled.
func bringUp(ctx context.Context, c *cluster, sub subject) error {
	if err := sub.start(ctx, c.servers[0]); err != nil {
		return err
	}
	if err := waitServed(ctx, c, c.servers[0].Name(), 60*time.Second); err != nil {
		return fmt.Errorf("wait for %s to serve the floating ip: %w", sub.name(), err)
	}
	for _, s := range c.servers[1:] {
		if err := sub.start(ctx, s); err != nil {
			return err
		}
	}
	if err := sub.waitSettled(ctx); err != nil {
		return err
	}
	return pause(ctx, settleTime)
}

// reset brings a cluster whose subject got stuck (for example keepalived's
// MASTER and the API's holder disagreeing after a lost race) back to the
// start: the subject is stopped everywhere, the floating IP is assigned to
// the first server through the API, and bringUp runs again.
func reset(ctx context.Context, c *cluster, sub subject) error {
	for _, s := range c.servers {
		sub.reap(s)
	}
	if err := assignTo(ctx, c, c.servers[0]); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return bringUp(ctx, c, sub)
}

// assignTo assigns the floating IP to s through the API, as s, and waits
// until the simulated cloud routes it there.
func assignTo(ctx context.Context, c *cluster, s *simcloud.Server) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		fmt.Sprintf("%s/floating_ips/%d/actions/assign", c.cloud.APIEndpoint(), c.fip.ID()),
		strings.NewReader(fmt.Sprintf(`{"server":%d}`, s.ID())))
	if err != nil {
		return fmt.Errorf("build assign request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token(c.index(s)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		return fmt.Errorf("assign floating ip to %s: %w", s.Name(), err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("assign floating ip to %s: status %d", s.Name(), resp.StatusCode)
	}
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) { return c.cloud.Holder(c.fip) == s.Name(), nil }); err != nil {
		return fmt.Errorf("wait for route to %s: %w", s.Name(), err)
	}
	return nil
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitServed waits until a request from the client namespace to the
// floating IP is answered by server name.
func waitServed(ctx context.Context, c *cluster, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		rctx, rcancel := context.WithTimeout(ctx, probeTimeout)
		defer rcancel()
		got, err := c.cloud.Get(rctx, c.fip.URL())
		if err == nil {
			last = got
		}
		return err == nil && got == name, nil
	})
	if err != nil {
		return fmt.Errorf("floating ip served by %q, want %q: %w", last, name, err)
	}
	return nil
}

// errNotServing means the cluster was left inconsistent: the holder did not
// serve the floating IP before a trial, or the subject did not settle on
// the API's holder after one (for example two keepalived MASTERs raced and
// the API's holder is not the VRRP MASTER).
var errNotServing = errors.New("holder does not serve the floating ip")

// outageTrials disrupts the current holder trials times and returns the
// client-visible outage of each trial: the longest run of failed probe
// requests, from the start of the first failed request to the start of the
// first one answered again (by any server). A trial whose service does not
// come back within trialTimeout is counted as failed. After each trial the
// disrupted server is restored and rejoins as a standby, so the holder
// alternates. After a failed trial, or when the cluster is found
// inconsistent before or after one, it is reset (resets counts the
// inconsistent ones; a trial measured before the cluster failed to settle
// still counts).
func outageTrials(ctx context.Context, c *cluster, sub subject, how disruption, trials int) (samples []time.Duration, failed, resets int, err error) {
	for done := 0; done < trials; {
		if ctx.Err() != nil {
			return samples, failed, resets, ctx.Err()
		}
		holderName := c.cloud.Holder(c.fip)
		holder := c.cloud.Server(holderName)
		var (
			outage time.Duration
			ok     bool
			err    error
		)
		if holder == nil {
			err = fmt.Errorf("%w: no holder", errNotServing)
		} else {
			outage, ok, err = oneOutage(ctx, c, sub, holder, how)
		}
		if ctx.Err() != nil {
			return samples, failed, resets, ctx.Err()
		}
		switch {
		case ok:
			// A measured trial counts even if the cluster did not settle
			// afterwards; then it is reset before the next one.
			done++
			samples = append(samples, outage)
			c.env.Log.Info("outage trial", "subject", sub.name(), "trial", done, "holder", holderName, "outage", outage)
			if err == nil {
				continue
			}
			resets++
			c.env.Log.Warn("cluster inconsistent after a trial, resetting", "subject", sub.name(), "err", err)
		case errors.Is(err, errNotServing):
			resets++
			c.env.Log.Warn("cluster inconsistent before a trial, resetting", "subject", sub.name(), "err", err)
		default:
			done++
			failed++
			c.env.Log.Warn("outage trial failed, resetting", "subject", sub.name(), "trial", done, "holder", holderName, "err", err)
		}
		if resets > trials {
			return samples, failed, resets, fmt.Errorf("gave up after %d resets: %w", resets, err)
		}
		if rerr := reset(ctx, c, sub); rerr != nil {
			return samples, failed, resets, fmt.Errorf("reset after %v: %w", err, rerr)
		}
	}
	return samples, failed, resets, nil
}

// oneOutage runs one trial against holder and brings it back afterwards.
func oneOutage(ctx context.Context, c *cluster, sub subject, holder *simcloud.Server, how disruption) (time.Duration, bool, error) {
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	probe := c.cloud.StartProbe(pctx, c.fip.URL(), probeInterval, probeTimeout)
	if err := waitProbe(ctx, probe, func(s simcloud.Sample) bool { return s.OK() && s.Server == holder.Name() }, 10*time.Second); err != nil {
		probe.Stop()
		return 0, false, fmt.Errorf("%w: %s before the trial: %w", errNotServing, holder.Name(), err)
	}
	stopped := make(chan error, 1)
	switch how {
	case crash:
		if err := c.cloud.Crash(holder.Name()); err != nil {
			probe.Stop()
			return 0, false, err
		}
	case sigterm:
		// The stop waits for the process, which hands over first; the
		// probe keeps running meanwhile.
		go func() { stopped <- sub.stop(ctx, holder) }()
	}
	disrupted := time.Now()
	moved := waitProbe(ctx, probe, func(s simcloud.Sample) bool { return s.OK() && s.Server != holder.Name() }, trialTimeout)
	samples := probe.Stop()
	d, ok := time.Duration(0), moved == nil
	if ok {
		if o, found := simcloud.LongestOutage(samples); found {
			d = o.Duration()
		}
		if _, isAgent := sub.(agentSubject); isAgent && how == crash {
			if last, found := probe.Last(); found {
				c.recordPhases(ctx, c.cloud.Server(last.Server), disrupted)
			}
		}
	}
	// Bring the old holder back as a standby for the next trial.
	switch how {
	case crash:
		sub.reap(holder)
		if err := c.cloud.Restore(holder.Name()); err != nil {
			return d, ok, err
		}
		if p := c.names[holder.Name()]; p != nil {
			_ = p.Wait()
		}
		if err := c.startNameService(ctx, holder); err != nil {
			return d, ok, err
		}
	case sigterm:
		if err := <-stopped; err != nil {
			c.env.Log.Warn("stop holder", "server", holder.Name(), "err", err)
		}
	}
	if !ok {
		// The caller resets the cluster.
		return d, false, fmt.Errorf("no server took over from %s: %w", holder.Name(), moved)
	}
	if err := sub.start(ctx, holder); err != nil {
		return d, ok, err
	}
	if err := sub.waitSettled(ctx); err != nil {
		return d, ok, err
	}
	return d, ok, pause(ctx, settleTime)
}

// recordPhases reads the timeline of the move that made s the holder after
// a crash at disrupted and appends each phase's duration to c.phases, with
// "detection" from the crash to the failure seen. The move may still be
// verifying when the client is served again, so it waits up to 5 s for a
// successful move that started after the crash; without one it records
// nothing.
func (c *cluster) recordPhases(ctx context.Context, s *simcloud.Server, disrupted time.Time) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = poll(ctx, 20*time.Millisecond, func() (bool, error) {
		st, err := c.agentStatus(ctx, s)
		if err != nil || len(st.Groups) == 0 {
			return false, nil
		}
		m := st.Groups[0].LastMove
		if m == nil || m.Result != "success" || m.At.Before(disrupted) {
			return false, nil
		}
		out := map[string]time.Duration{}
		for i, p := range m.Timeline.Phases {
			if i == 0 && p.Phase == "failure_seen" {
				out["detection"] = p.At.Sub(disrupted)
			}
			if i > 0 {
				out[p.Phase] = time.Duration(p.Seconds * float64(time.Second))
			}
		}
		c.phases = append(c.phases, out)
		return true, nil
	})
}

// waitProbe waits until the probe's latest sample satisfies cond.
func waitProbe(ctx context.Context, p *simcloud.Probe, cond func(simcloud.Sample) bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, 5*time.Millisecond, func() (bool, error) {
		s, ok := p.Last()
		return ok && cond(s), nil
	})
}

// Outages is the result of the outage scenarios for one subject.
type Outages struct {
	Crash map[time.Duration]bench.Summary // by action delay
	// Phases summarises the new holder's move timeline over the crash
	// trials, by action delay and phase (PhaseOrder), hc-agent only.
	Phases   map[time.Duration]map[string]bench.Summary
	Handover *bench.Summary // nil when not measured
	// Resets counts how often the cluster was found inconsistent before a
	// trial and had to be rebuilt, by kind ("crash", "handover").
	Resets map[string]int
	Err    error
}

// RunOutages measures the crash failover outage of one subject with each
// action delay in delays, then the planned hand-over outage with the first
// delay. An error that prevents the scenario is returned in Err with the
// summaries measured so far.
func RunOutages(ctx context.Context, env Env, subjectName string, delays []time.Duration, handover bool) Outages {
	res := Outages{Crash: map[time.Duration]bench.Summary{}, Phases: map[time.Duration]map[string]bench.Summary{}, Resets: map[string]int{}}
	newSubject := func(c *cluster) subject { return agentSubject{c} }
	if subjectName == bench.SubjectKeepalived {
		newSubject = func(c *cluster) subject { return keepalivedSubject{c} }
	}
	if len(delays) == 0 {
		return res
	}
	c, sub, err := outageCluster(ctx, env, newSubject, delays[0])
	if err != nil {
		res.Err = fmt.Errorf("set up %s cluster: %w", subjectName, err)
		return res
	}
	defer c.close()
	for _, d := range delays {
		c.sim.SetActionDelay(d)
		c.phases = nil
		samples, failed, resets, err := outageTrials(ctx, c, sub, crash, env.Trials)
		res.Crash[d] = bench.Summarize(samples, failed)
		if len(c.phases) > 0 {
			res.Phases[d] = summarizePhases(c.phases)
		}
		res.Resets["crash"] += resets
		if err != nil {
			res.Err = fmt.Errorf("%s crash trials with action delay %v: %w", subjectName, d, err)
			return res
		}
	}
	if handover {
		c.sim.SetActionDelay(delays[0])
		samples, failed, resets, err := outageTrials(ctx, c, sub, sigterm, env.Trials)
		h := bench.Summarize(samples, failed)
		res.Resets["handover"] += resets
		res.Handover = &h
		if err != nil {
			res.Err = fmt.Errorf("%s hand-over trials: %w", subjectName, err)
		}
	}
	return res
}

// PhaseOrder is the order of the phase summaries in Outages.Phases:
// "detection" (crash to failure seen) and then the move's own phases.
var PhaseOrder = []string{"detection", "decision", "configured", "assign_requested", "action_succeeded", "verified"}

func summarizePhases(trials []map[string]time.Duration) map[string]bench.Summary {
	out := map[string]bench.Summary{}
	for _, p := range PhaseOrder {
		var ds []time.Duration
		for _, t := range trials {
			if d, ok := t[p]; ok {
				ds = append(ds, d)
			}
		}
		if len(ds) > 0 {
			out[p] = bench.Summarize(ds, 0)
		}
	}
	return out
}
