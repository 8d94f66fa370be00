package scenario

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/internal/bench"
)

// StormResult is the outcome of a boot storm: many servers from one image
// starting hc-agent at once.
type StormResult struct {
	Servers int
	Grouped int
	// Configured is each server's time from the start of the storm to its
	// private NIC (and, on the floating IP's holder, the floating IP)
	// being configured in the kernel; servers not configured within
	// stormTimeout count as failed.
	Configured bench.Summary
	// OwnStart is the same from the start of each server's own agent.
	OwnStart bench.Summary
	// Spawn is how long starting every agent process took (one after
	// another, as fast as the harness can).
	Spawn time.Duration
	// Requests and RateLimited count every API request of the storm, and
	// the 429 answers among them, in the first Window.
	Window      time.Duration
	Requests    int
	RateLimited int
}

// stormTimeout bounds the wait for one server to be configured;
// stormPoll is the resolution of the configured times (fifty pollers at
// 2 ms would load the machine they measure).
const (
	stormTimeout = 2 * time.Minute
	stormPoll    = 20 * time.Millisecond
)

// RunStorm boots servers servers with one private network each at once:
// the first grouped of them form a failover group around one floating IP
// (assigned to the first), the others run without groups; every agent runs
// its private-network reconciler and floating IP manager. It measures the
// time to configured of each server, and the API requests (and 429s) of the
// whole fleet in the first window, counted by the simulator, which holds
// the project's one rate-limit bucket (3600 per hour).
func RunStorm(ctx context.Context, env Env, servers, grouped int, window time.Duration) (StormResult, error) {
	res := StormResult{Servers: servers, Grouped: grouped, Window: window}
	c, err := newCluster(ctx, env, clusterSpec{servers: servers, grouped: grouped, networks: 1, holder: 0})
	if err != nil {
		return res, err
	}
	defer c.close()
	exp := make([]expectation, len(c.servers))
	for i, s := range c.servers {
		if i == 0 {
			exp[i] = expect(s, c.fip)
		} else {
			exp[i] = expect(s, nil)
		}
	}
	start := time.Now()
	// Spawned one after another: in parallel they contend in the
	// simulated cloud's namespace switching and all start later.
	started := make([]time.Time, len(c.servers))
	for i, s := range c.servers {
		started[i] = time.Now()
		if _, err := c.startAgent(ctx, s); err != nil {
			return res, err
		}
	}
	res.Spawn = time.Since(start)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		took   []time.Duration
		own    []time.Duration
		failed int
	)
	for i, s := range c.servers {
		wg.Add(1)
		go func() { // ends when s is configured or after stormTimeout
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, stormTimeout)
			defer cancel()
			var at time.Time
			err := poll(wctx, stormPoll, func() (bool, error) {
				ok, err := configured(s, exp[i])
				if ok {
					at = time.Now()
				}
				return ok, err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				env.Log.Warn("storm server not configured", "server", s.Name(), "err", err)
				return
			}
			took = append(took, at.Sub(start))
			own = append(own, at.Sub(started[i]))
		}()
	}
	wg.Wait()
	res.Configured = bench.Summarize(took, failed)
	res.OwnStart = bench.Summarize(own, failed)
	if err := pause(ctx, time.Until(start.Add(window))); err != nil {
		return res, err
	}
	for _, r := range c.sim.RequestLog() {
		res.Requests++
		if r.Status == http.StatusTooManyRequests {
			res.RateLimited++
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if failed > 0 {
		return res, fmt.Errorf("%d of %d servers not configured within %v", failed, servers, stormTimeout)
	}
	return res, nil
}
