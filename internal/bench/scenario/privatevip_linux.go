package scenario

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/bench/keepalived"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// Private VIPs of the benchmark in net1 (10.1.0.0/16, subnet 10.1.0.0/24):
// the alias VIP inside the subnet, the route VIP inside the network but
// outside the subnet.
var (
	benchAliasVIP = netip.MustParseAddr("10.1.0.100")
	benchRouteVIP = netip.MustParseAddr("10.1.5.50")
)

// privateTarget is the private VIP an outage scenario measures: how it
// moves, where it is, and the private client that probes it.
type privateTarget struct {
	via    config.Via
	vip    netip.Addr
	client *simcloud.Server
}

func (t privateTarget) url() string { return "http://" + t.vip.String() + "/" }

// holder returns the server the API says holds the VIP: the one whose
// attachment lists it (alias) or whose private IP is the route's gateway
// (route).
func (t privateTarget) holder(c *cluster) string {
	if t.via == config.ViaAlias {
		return c.cloud.AliasHolder(c.nets[0].Name(), t.vip)
	}
	return c.cloud.RouteHolder(c.nets[0].Name(), netip.PrefixFrom(t.vip, 32))
}

// placeOn makes s the API's holder of the VIP directly (set-up and reset):
// the alias list of every server, or the network's one route.
func (t privateTarget) placeOn(c *cluster, s *simcloud.Server) error {
	net := c.nets[0].Name()
	if t.via == config.ViaRoute {
		ip, err := privateIP(s)
		if err != nil {
			return err
		}
		return c.cloud.SetNetworkRoutes(net, []cloudapitest.Route{{Destination: netip.PrefixFrom(t.vip, 32), Gateway: ip}})
	}
	for _, x := range c.servers {
		var ips []netip.Addr
		if x == s {
			ips = []netip.Addr{t.vip}
		}
		if err := c.cloud.SetAliasIPs(x.Name(), net, ips); err != nil {
			return err
		}
	}
	return nil
}

// PrivateOutages is the result of the private VIP crash scenario for one
// subject and kind.
type PrivateOutages struct {
	Crash bench.Summary
	// RequestsPerMove is the mean number of API requests (all servers)
	// from the crash until 2 s after the new holder answered.
	RequestsPerMove float64
	Resets          int
	Err             error
}

// movesGrace is how long after the new holder answers a move's API
// requests are still counted: a verification read after the last action.
const movesGrace = 2 * time.Second

// RunPrivateOutages measures the client-visible outage after a crash of
// the holder of a private VIP (via alias or route) with the given action
// delay, for hc-agent or the keepalived baseline (alias only), probed from
// a private client in the network.
func RunPrivateOutages(ctx context.Context, env Env, subjectName string, via config.Via, delay time.Duration) PrivateOutages {
	var res PrivateOutages
	c, err := newCluster(ctx, env, clusterSpec{servers: groupSize, networks: 1, dhcp: true, holder: -1, actionDelay: delay, names: true})
	if err != nil {
		res.Err = fmt.Errorf("set up %s cluster: %w", subjectName, err)
		return res
	}
	defer c.close()
	t := privateTarget{via: via, vip: benchAliasVIP}
	if via == config.ViaRoute {
		t.vip = benchRouteVIP
	}
	if t.client, err = c.cloud.AddPrivateClient(c.nets[0].Name()); err != nil {
		res.Err = fmt.Errorf("add private client: %w", err)
		return res
	}
	var sub subject
	switch subjectName {
	case bench.SubjectAgent:
		c.privateIPs = []config.PrivateIP{{IP: t.vip.String(), Via: via}}
		sub = privateAgentSubject{agentSubject{c}, t}
	case bench.SubjectKeepalived:
		if via != config.ViaAlias {
			res.Err = errors.New("the keepalived baseline moves alias IPs only")
			return res
		}
		sub = aliasKeepalivedSubject{keepalivedSubject{c}, t}
	default:
		res.Err = fmt.Errorf("unknown subject %q", subjectName)
		return res
	}
	if err := privateBringUp(ctx, c, sub, t); err != nil {
		res.Err = err
		return res
	}
	var samples []time.Duration
	var requests []int
	failed := 0
	for done := 0; done < env.Trials; {
		if ctx.Err() != nil {
			break
		}
		holder := c.cloud.Server(t.holder(c))
		var (
			d   time.Duration
			n   int
			ok  bool
			err error
		)
		if holder == nil {
			err = fmt.Errorf("%w: no holder of the private vip", errNotServing)
		} else {
			d, n, ok, err = privateOutage(ctx, c, sub, t, holder)
		}
		switch {
		case ok:
			done++
			samples = append(samples, d)
			requests = append(requests, n)
			env.Log.Info("private vip outage trial", "subject", sub.name(), "via", via, "trial", done, "holder", holder.Name(), "outage", d, "requests", n)
			if err == nil {
				continue
			}
			res.Resets++
		case errors.Is(err, errNotServing):
			res.Resets++
		default:
			done++
			failed++
			env.Log.Warn("private vip outage trial failed, resetting", "subject", sub.name(), "via", via, "err", err)
		}
		if res.Resets > env.Trials {
			res.Err = fmt.Errorf("gave up after %d resets: %w", res.Resets, err)
			break
		}
		if rerr := privateReset(ctx, c, sub, t); rerr != nil {
			res.Err = fmt.Errorf("reset after %v: %w", err, rerr)
			break
		}
	}
	res.Crash = bench.Summarize(samples, failed)
	if len(requests) > 0 {
		sum := 0
		for _, n := range requests {
			sum += n
		}
		res.RequestsPerMove = float64(sum) / float64(len(requests))
	}
	if res.Err == nil && ctx.Err() != nil {
		res.Err = ctx.Err()
	}
	return res
}

// privateBringUp places the VIP on srv1 through the API, starts the
// subject there alone until it serves the VIP, then on the others, and
// waits until all have settled.
func privateBringUp(ctx context.Context, c *cluster, sub subject, t privateTarget) error {
	if err := t.placeOn(c, c.servers[0]); err != nil {
		return fmt.Errorf("place the private vip on %s: %w", c.servers[0].Name(), err)
	}
	if err := sub.start(ctx, c.servers[0]); err != nil {
		return err
	}
	if err := waitPrivateServed(ctx, c, t, c.servers[0].Name(), 60*time.Second); err != nil {
		return fmt.Errorf("wait for %s to serve the private vip: %w", sub.name(), err)
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

// privateReset stops the subject everywhere and brings the cluster up
// again from srv1.
func privateReset(ctx context.Context, c *cluster, sub subject, t privateTarget) error {
	for _, s := range c.servers {
		sub.reap(s)
	}
	return privateBringUp(ctx, c, sub, t)
}

// waitPrivateServed waits until the private client's request to the VIP is
// answered by server name.
func waitPrivateServed(ctx context.Context, c *cluster, t privateTarget, name string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		rctx, rcancel := context.WithTimeout(ctx, probeTimeout)
		defer rcancel()
		got, err := t.client.Get(rctx, t.url())
		if err == nil {
			last = got
		}
		return err == nil && got == name, nil
	})
	if err != nil {
		return fmt.Errorf("private vip served by %q, want %q: %w", last, name, err)
	}
	return nil
}

// privateOutage crashes holder, measures the private client's longest
// outage and the API requests of the move, and brings holder back as a
// standby.
func privateOutage(ctx context.Context, c *cluster, sub subject, t privateTarget, holder *simcloud.Server) (time.Duration, int, bool, error) {
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	probe := t.client.StartProbe(pctx, t.url(), probeInterval, probeTimeout)
	if err := waitProbe(ctx, probe, func(s simcloud.Sample) bool { return s.OK() && s.Server == holder.Name() }, 10*time.Second); err != nil {
		probe.Stop()
		return 0, 0, false, fmt.Errorf("%w: %s before the trial: %w", errNotServing, holder.Name(), err)
	}
	mark := len(c.sim.RequestLog())
	if err := c.cloud.Crash(holder.Name()); err != nil {
		probe.Stop()
		return 0, 0, false, err
	}
	moved := waitProbe(ctx, probe, func(s simcloud.Sample) bool { return s.OK() && s.Server != holder.Name() }, trialTimeout)
	samples := probe.Stop()
	var d time.Duration
	ok := moved == nil
	if ok {
		if o, found := simcloud.LongestOutage(samples); found {
			d = o.Duration()
		}
		_ = pause(ctx, movesGrace)
	}
	n := len(c.sim.RequestLog()) - mark
	sub.reap(holder)
	if err := c.cloud.Restore(holder.Name()); err != nil {
		return d, n, ok, err
	}
	if p := c.names[holder.Name()]; p != nil {
		_ = p.Wait()
	}
	if err := c.startNameService(ctx, holder); err != nil {
		return d, n, ok, err
	}
	if !ok {
		return d, n, false, fmt.Errorf("no server took over the private vip from %s: %w", holder.Name(), moved)
	}
	if err := sub.start(ctx, holder); err != nil {
		return d, n, ok, err
	}
	if err := sub.waitSettled(ctx); err != nil {
		return d, n, ok, err
	}
	return d, n, ok, pause(ctx, settleTime)
}

// privateAgentSubject is hc-agent with a group that holds only the private
// VIP; it has settled when every agent sees the group and the private
// client reaches the API's holder.
type privateAgentSubject struct {
	agentSubject
	t privateTarget
}

func (a privateAgentSubject) waitSettled(ctx context.Context) error {
	if err := a.agentSubject.waitSettled(ctx); err != nil {
		return err
	}
	holder := a.t.holder(a.c)
	if holder == "" {
		return fmt.Errorf("%w: the API has no holder of the private vip", errNotServing)
	}
	if err := waitPrivateServed(ctx, a.c, a.t, holder, 10*time.Second); err != nil {
		return fmt.Errorf("%w: %w", errNotServing, err)
	}
	return nil
}

// aliasKeepalivedSubject is the baseline for an alias VIP: keepalived with
// unicast VRRP over the private network, the VIP on the private NIC, and
// the read-modify-write notify script (keepalived.AliasScript).
type aliasKeepalivedSubject struct {
	keepalivedSubject
	t privateTarget
}

func (k aliasKeepalivedSubject) start(ctx context.Context, s *simcloud.Server) error {
	c := k.c
	return c.startKeepalived(s, func(dir, headers string) (string, error) {
		return keepalived.AliasScript{
			Endpoint: c.cloud.APIEndpoint(), HeaderFile: headers, NetworkID: c.nets[0].ID(),
			ServerID: s.ID(), VIP: k.t.vip, LogFile: filepath.Join(dir, "notify.log"),
		}.Render()
	}, netip.PrefixFrom(k.t.vip, 32), "")
}

// waitSettled waits until the API's holder of the VIP is keepalived's
// MASTER and every other keepalived is BACKUP (see keepalivedSubject).
func (k aliasKeepalivedSubject) waitSettled(ctx context.Context) error {
	return k.c.waitKeepalivedSettled(ctx, func() string { return k.t.holder(k.c) })
}
