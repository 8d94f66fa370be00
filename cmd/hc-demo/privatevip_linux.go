package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// The private VIP of the demo: an alias IP in net-a that follows the
// group's holder, next to an unrelated alias of srv-2 that must survive
// every move (change_alias_ips replaces the whole list).
var (
	demoPrivateVIP = netip.MustParseAddr("10.0.0.100")
	demoOtherAlias = netip.MustParseAddr("10.0.0.60")
)

// setUpAliases gives srv-1 the private VIP and srv-2 an unrelated alias
// before the agents start (the API and the metadata both show them).
func (w *world) setUpAliases() error {
	if err := w.c.SetAliasIPs("srv-1", "net-a", []netip.Addr{demoPrivateVIP}); err != nil {
		return err
	}
	return w.c.SetAliasIPs("srv-2", "net-a", []netip.Addr{demoOtherAlias})
}

// privateVIPSupported reports whether the agent knows the private_ips key
// (older builds reject it as unknown, and then the group holds only the
// floating IPs and the private VIP step is skipped).
func privateVIPSupported(ctx context.Context, agent, dir string) bool {
	if agent == "" {
		return false
	}
	path := filepath.Join(dir, "probe-private-ips.yaml")
	if err := os.WriteFile(path, []byte("groups:\n  - name: web\n    private_ips: [{ip: 10.0.0.100, via: alias}]\n"), 0o600); err != nil {
		return false
	}
	defer os.Remove(path)
	out, _ := exec.CommandContext(ctx, agent, "check-config", "--config", path).CombinedOutput()
	return !strings.Contains(string(out), "private_ips: unknown key")
}

// privateIPsLine is the group's private_ips line of the agent config, or
// "" without support.
func (w *world) privateIPsLine() string {
	if !w.privateVIP {
		return ""
	}
	return fmt.Sprintf("    private_ips: [{ip: %s, via: alias}]\n", demoPrivateVIP)
}

// privateVIPFailover brings every server back into the group, then crashes
// the holder of the private VIP while a client inside net-a probes it, and
// shows the client-visible outage and the API's alias lists before and
// after.
func (w *world) privateVIPFailover(ctx context.Context, d *demo, agent string) error {
	if agent == "" {
		return skip("needs hc-agent")
	}
	if !w.privateVIP {
		return skip("this hc-agent does not support private VIPs (private_ips)")
	}
	if err := w.reviveAll(ctx, d, agent); err != nil {
		return err
	}
	pc, err := w.c.AddPrivateClient("net-a")
	if err != nil {
		return err
	}
	d.say("client %s in net-a (%s) probes http://%s/ every %s", pc.Name(), privateIP(pc), demoPrivateVIP, probeInterval)
	url := "http://" + demoPrivateVIP.String() + "/"
	var holder string
	if err := waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		got, err := pc.Get(rctx, url)
		holder = got
		return err == nil && w.c.AliasHolder("net-a", demoPrivateVIP) == got, nil
	}); err != nil {
		return fmt.Errorf("the private vip never answered from its API holder: %w", err)
	}
	d.say("alias IPs in the API before: %s", w.aliasLists())
	p := pc.StartProbe(ctx, url, probeInterval, probeTimeout)
	defer p.Stop()
	if err := waitFor(ctx, 5*time.Second, 10*time.Millisecond, func() (bool, error) {
		s, ok := p.Last()
		return ok && s.OK(), nil
	}); err != nil {
		return fmt.Errorf("private vip probe: %w", err)
	}
	crashAt := time.Now()
	if err := w.c.Crash(holder); err != nil {
		return err
	}
	d.say("crashed %s at t=%s", holder, fmtDur(crashAt.Sub(d.start)))
	err = waitFor(ctx, 45*time.Second, 10*time.Millisecond, func() (bool, error) {
		s, ok := p.Last()
		return ok && s.OK() && s.Server != holder, nil
	})
	settle := time.NewTimer(5 * probeInterval)
	select {
	case <-settle.C:
	case <-ctx.Done():
	}
	samples := p.Stop()
	if err != nil {
		return fmt.Errorf("no other server took over the private vip: %w", err)
	}
	if o, found := simcloud.LongestOutage(samples); found {
		d.note("private VIP %s (alias): %s -> %s, client-visible outage %s (%d failed requests)", demoPrivateVIP, orNone(o.Before), orNone(o.After), fmtDur(o.Duration()), o.Failures)
	} else {
		last, _ := p.Last()
		d.note("private VIP %s (alias): no failed request; now answered by %s", demoPrivateVIP, orNone(last.Server))
	}
	d.say("alias IPs in the API after:  %s", w.aliasLists())
	if !slices.Contains(w.sim.AliasIPs(w.c.Server("srv-2").ID(), w.c.Network("net-a").ID()), demoOtherAlias) {
		return fmt.Errorf("srv-2 lost its alias %s", demoOtherAlias)
	}
	return nil
}

// reviveAll restores crashed servers and starts an agent (and name
// service) wherever none runs, then waits until every agent sees all
// three members.
func (w *world) reviveAll(ctx context.Context, d *demo, agent string) error {
	var revived []string
	for _, s := range w.servers {
		p, ok := w.agents[s.Name()]
		if ok {
			select {
			case <-p.Done():
			default:
				continue // running
			}
		}
		// A crashed server has no processes left: nothing answers on its
		// loopback. A server whose agent was only stopped still runs its
		// name service.
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, alive := s.Get(rctx, "http://127.0.0.1/")
		cancel()
		if alive != nil {
			if err := w.c.Restore(s.Name()); err != nil {
				return err
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := s.StartNameService(rctx, 80)
			cancel()
			if err != nil {
				return err
			}
		}
		if err := w.startAgent(ctx, s, agent); err != nil {
			return err
		}
		revived = append(revived, s.Name())
	}
	if len(revived) > 0 {
		d.say("back in the group: %s", strings.Join(revived, ", "))
	}
	want := fmt.Sprintf("hcagent_group_members_alive{group=\"web\"} %d\n", len(w.servers))
	return waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() (bool, error) {
		for _, s := range w.servers {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			m, err := s.Get(rctx, "http://127.0.0.1:9183/metrics")
			cancel()
			if err != nil || !strings.Contains(m, want) {
				return false, nil
			}
		}
		return true, nil
	})
}

// aliasLists renders every server's alias IPs in net-a as the API reports
// them.
func (w *world) aliasLists() string {
	var parts []string
	netID := w.c.Network("net-a").ID()
	for _, s := range w.servers {
		parts = append(parts, fmt.Sprintf("%s %v", s.Name(), w.sim.AliasIPs(s.ID(), netID)))
	}
	return strings.Join(parts, ", ")
}

func privateIP(s *simcloud.Server) string {
	_, nets := s.Metadata()
	if len(nets) == 0 {
		return "no private ip"
	}
	return nets[0].IP.String()
}
