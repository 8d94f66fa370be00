package scenario

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hc-agent/hc-agent/bench"
	"github.com/hc-agent/hc-agent/simcloud"
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
	// The first server starts alone so it becomes the holder; keepalived
	// needs three missed advertisements before it declares itself MASTER.
	if err := sub.start(ctx, c.servers[0]); err != nil {
		c.close()
		return nil, nil, err
	}
	if err := waitServed(ctx, c, c.servers[0].Name(), 60*time.Second); err != nil {
		c.close()
		return nil, nil, fmt.Errorf("wait for %s to serve the floating ip: %w", sub.name(), err)
	}
	for _, s := range c.servers[1:] {
		if err := sub.start(ctx, s); err != nil {
			c.close()
			return nil, nil, err
		}
	}
	if err := sub.waitSettled(ctx); err != nil {
		c.close()
		return nil, nil, err
	}
	return c, sub, nil
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

// outageTrials disrupts the current holder trials times and returns the
// client-visible outage of each trial: the longest run of failed probe
// requests, from the start of the first failed request to the start of the
// first one answered again (by any server). A trial whose service does not
// come back within trialTimeout is counted as failed. After each trial the
// disrupted server is restored and rejoins as a standby, so the holder
// alternates.
func outageTrials(ctx context.Context, c *cluster, sub subject, how disruption, trials int) (samples []time.Duration, failed int, err error) {
	for i := range trials {
		if ctx.Err() != nil {
			return samples, failed, ctx.Err()
		}
		holderName := c.cloud.Holder(c.fip)
		holder := c.cloud.Server(holderName)
		if holder == nil {
			return samples, failed, fmt.Errorf("trial %d: floating ip has no holder", i+1)
		}
		d, ok, err := oneOutage(ctx, c, sub, holder, how)
		if err != nil {
			return samples, failed, fmt.Errorf("trial %d: %w", i+1, err)
		}
		if ok {
			samples = append(samples, d)
		} else {
			failed++
		}
		c.env.Log.Info("outage trial", "subject", sub.name(), "trial", i+1, "holder", holderName, "outage", d, "ok", ok)
	}
	return samples, failed, nil
}

// oneOutage runs one trial against holder and brings it back afterwards.
func oneOutage(ctx context.Context, c *cluster, sub subject, holder *simcloud.Server, how disruption) (time.Duration, bool, error) {
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	probe := c.cloud.StartProbe(pctx, c.fip.URL(), probeInterval, probeTimeout)
	if err := waitProbe(ctx, probe, func(s simcloud.Sample) bool { return s.OK() && s.Server == holder.Name() }, 10*time.Second); err != nil {
		probe.Stop()
		return 0, false, fmt.Errorf("holder %s does not serve before the trial: %w", holder.Name(), err)
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
	moved := waitProbe(ctx, probe, func(s simcloud.Sample) bool { return s.OK() && s.Server != holder.Name() }, trialTimeout)
	samples := probe.Stop()
	d, ok := time.Duration(0), moved == nil
	if ok {
		if o, found := simcloud.LongestOutage(samples); found {
			d = o.Duration()
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
		// Let the cloud finish whatever is pending before rejoining.
		if err := waitMoved(ctx, c, holder.Name(), trialTimeout); err != nil {
			return d, ok, fmt.Errorf("no server took over from %s: %w", holder.Name(), errors.Join(moved, err))
		}
	}
	if err := sub.start(ctx, holder); err != nil {
		return d, ok, err
	}
	return d, ok, sub.waitSettled(ctx)
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

// waitMoved waits until the floating IP is routed away from server name.
func waitMoved(ctx context.Context, c *cluster, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, 50*time.Millisecond, func() (bool, error) {
		h := c.cloud.Holder(c.fip)
		return h != "" && h != name, nil
	})
}

// Outages is the result of the outage scenarios for one subject.
type Outages struct {
	Crash    map[time.Duration]bench.Summary // by action delay
	Handover *bench.Summary                  // nil when not measured
	Err      error
}

// RunOutages measures the crash failover outage of one subject with each
// action delay in delays, then the planned hand-over outage with the first
// delay. An error that prevents the scenario is returned in Err with the
// summaries measured so far.
func RunOutages(ctx context.Context, env Env, subjectName string, delays []time.Duration, handover bool) Outages {
	res := Outages{Crash: map[time.Duration]bench.Summary{}}
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
		samples, failed, err := outageTrials(ctx, c, sub, crash, env.Trials)
		res.Crash[d] = bench.Summarize(samples, failed)
		if err != nil {
			res.Err = fmt.Errorf("%s crash trials with action delay %v: %w", subjectName, d, err)
			return res
		}
	}
	if handover {
		c.sim.SetActionDelay(delays[0])
		samples, failed, err := outageTrials(ctx, c, sub, sigterm, env.Trials)
		h := bench.Summarize(samples, failed)
		res.Handover = &h
		if err != nil {
			res.Err = fmt.Errorf("%s hand-over trials: %w", subjectName, err)
		}
	}
	return res
}
