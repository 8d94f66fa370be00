package scenario

import (
	"context"
	"fmt"
	"time"
)

// PauseResult is the outcome of the pause trials: a live migration pauses a
// server for under a second, and failure detection must not fail over.
type PauseResult struct {
	Pause  time.Duration
	Trials int
	// Moved counts trials in which the floating IP left the paused holder
	// or a standby attempted a move.
	Moved int
}

// PauseObserve is how long after a pause a trial watches for a move: well
// beyond the time memberlist needs to declare a member dead.
const PauseObserve = 3 * time.Second

// RunPause builds the trio of the outage scenarios with hc-agent (action
// latency delay), then trials times freezes the holder's namespace for
// stop (SIGSTOP of every process, SIGCONT after) and watches for
// PauseObserve whether the floating IP moves or a standby tries to move it
// (a move record in its status that started after the pause began).
func RunPause(ctx context.Context, env Env, stop, delay time.Duration, trials int) (PauseResult, error) {
	res := PauseResult{Pause: stop}
	c, _, err := outageCluster(ctx, env, func(c *cluster) subject { return agentSubject{c} }, delay)
	if err != nil {
		return res, fmt.Errorf("set up cluster: %w", err)
	}
	defer c.close()
	for range trials {
		holder := c.cloud.Holder(c.fip)
		start := time.Now()
		if err := c.cloud.Pause(ctx, holder, stop); err != nil {
			return res, err
		}
		if err := pause(ctx, PauseObserve); err != nil {
			return res, err
		}
		res.Trials++
		moved := c.cloud.Holder(c.fip) != holder
		for _, s := range c.servers {
			if s.Name() == holder {
				continue
			}
			st, err := c.agentStatus(ctx, s)
			if err != nil {
				return res, err
			}
			for _, g := range st.Groups {
				if g.LastMove != nil && g.LastMove.At.After(start) {
					moved = true
				}
			}
		}
		if moved {
			res.Moved++
			env.Log.Warn("pause moved the floating ip", "holder", holder, "pause", stop)
			if err := reset(ctx, c, agentSubject{c}); err != nil {
				return res, err
			}
			continue
		}
		if err := pause(ctx, settleTime); err != nil {
			return res, err
		}
	}
	return res, nil
}
