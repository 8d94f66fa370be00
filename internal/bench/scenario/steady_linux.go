package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/bench/footprint"
)

// BudgetResult is the steady-state API use of the agents of one group.
type BudgetResult struct {
	PerServer []bench.Budget // one per server, in server order
	Roles     []string       // each server's role at the end: holder, standby or "no group"
	// Modes are each server's floating IP manager read mode at the end
	// (reader or follower; "" when /status did not say).
	Modes     []string
	Group     bench.Budget // the group's servers together
	GroupSize int          // servers in the group
	Max       bench.Budget // the server that used the most
	// Intervals are the scaled intervals, for the report.
	Intervals string
}

// RunBudget runs a group of three agents and a fourth server without
// groups, all with poll intervals (metadata and API) divided by scale,
// waits until they have settled, and counts every API request of each
// server (the simulator counts per token, and each server has its own)
// over wall. A wall of one hour divided by scale is one simulated hour.
func RunBudget(ctx context.Context, env Env, scale float64, wall time.Duration) (BudgetResult, error) {
	var res BudgetResult
	c, err := newCluster(ctx, env, clusterSpec{servers: groupSize + 1, grouped: groupSize, networks: 1, holder: 0})
	if err != nil {
		return res, err
	}
	defer c.close()
	def := config.Default()
	c.agentCfg = func(cfg *config.Config) {
		cfg.API.PollInterval = scaleDuration(def.API.PollInterval, scale)
		cfg.Metadata.PollInterval = scaleDuration(def.Metadata.PollInterval, scale)
	}
	res.Intervals = fmt.Sprintf("api.poll_interval %v (default %v), metadata.poll_interval %v (default %v)",
		scaleDuration(def.API.PollInterval, scale), def.API.PollInterval,
		scaleDuration(def.Metadata.PollInterval, scale), def.Metadata.PollInterval)
	for _, s := range c.servers {
		if _, err := c.startAgent(ctx, s); err != nil {
			return res, err
		}
	}
	if err := c.waitAgentsSettled(ctx, 60*time.Second); err != nil {
		return res, err
	}
	before := make([]int, len(c.servers))
	for i := range c.servers {
		before[i] = c.sim.Requests(token(i))
	}
	start := time.Now()
	t := time.NewTimer(wall)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-t.C:
	}
	elapsed := time.Since(start)
	for _, s := range c.servers {
		role, mode := "no group", ""
		st, err := c.agentStatus(ctx, s)
		if err == nil {
			mode = st.Components["floatingip"].Mode
		}
		if c.inGroup(s) {
			role = "?"
			if err == nil && len(st.Groups) == 1 {
				role = st.Groups[0].Role
			}
		}
		res.Roles = append(res.Roles, role)
		res.Modes = append(res.Modes, mode)
	}
	group := 0
	for i, s := range c.servers {
		n := c.sim.Requests(token(i)) - before[i]
		b := bench.ScaleBudget(n, elapsed, scale)
		res.PerServer = append(res.PerServer, b)
		if b.PerHour >= res.Max.PerHour {
			res.Max = b
		}
		if c.inGroup(s) {
			group += n
			res.GroupSize++
		}
	}
	res.Group = bench.ScaleBudget(group, elapsed, scale)
	return res, nil
}

func scaleDuration(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) / scale)
}

// FootprintResult is the footprint of the idle agents of a settled group.
type FootprintResult struct {
	Holder  footprint.Result
	Standby footprint.Result
}

// FootprintHealthTarget is the HTTP health check of the footprint
// scenario's agents: the name service on their own server.
var FootprintHealthTarget = fmt.Sprintf("http://127.0.0.1:%d/", namePort)

// RunFootprint runs a group of three agents with the default configuration
// plus one HTTP health check (FootprintHealthTarget, at its default
// interval), waits until it has settled and then warmup more (the agents
// release their start-up memory some seconds after they are ready), and
// measures the holder's and one standby's resident memory, CPU time and
// context switches over window.
func RunFootprint(ctx context.Context, env Env, warmup, window time.Duration) (FootprintResult, error) {
	var res FootprintResult
	c, err := newCluster(ctx, env, clusterSpec{servers: groupSize, networks: 1, holder: 0, names: true})
	if err != nil {
		return res, err
	}
	defer c.close()
	c.profileDir = env.ProfileDir
	c.agentCfg = func(cfg *config.Config) {
		for i := range cfg.Groups {
			cfg.Groups[i].Health.Type = config.HealthHTTP
			cfg.Groups[i].Health.Target = FootprintHealthTarget
		}
	}
	for _, s := range c.servers {
		if _, err := c.startAgent(ctx, s); err != nil {
			return res, err
		}
	}
	if err := c.waitAgentsSettled(ctx, 60*time.Second); err != nil {
		return res, err
	}
	select {
	case <-ctx.Done():
		return res, context.Cause(ctx)
	case <-time.After(warmup):
	}
	holder := c.agents[c.servers[0].Name()]
	standby := c.agents[c.servers[1].Name()]
	type out struct {
		r   footprint.Result
		err error
	}
	ch := make(chan out, 1)
	// The goroutine ends after window, or earlier with ctx.
	go func() {
		r, err := footprint.Measure(ctx, func() (footprint.Sample, error) { return footprint.ReadProc(standby.PID()) }, window, time.Second, footprint.RealClock{})
		ch <- out{r, err}
	}()
	res.Holder, err = footprint.Measure(ctx, func() (footprint.Sample, error) { return footprint.ReadProc(holder.PID()) }, window, time.Second, footprint.RealClock{})
	o := <-ch
	if err != nil {
		return res, fmt.Errorf("holder: %w", err)
	}
	if o.err != nil {
		return res, fmt.Errorf("standby: %w", o.err)
	}
	res.Standby = o.r
	return res, nil
}
