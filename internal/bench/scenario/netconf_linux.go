package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// restoreAliases is how many alias IPs the restore scenario gives the
// server. Each trial deletes the next one: hc-agent allows a handful of
// restores per minute per item before it backs off from a fight, and the
// trials must measure restores, not the back-off.
const restoreAliases = 20

// restoreFIPTrials is how many times the restore scenario deletes the one
// floating IP address: fewer than the restores hc-agent allows per item and
// minute before it backs off from a fight.
const restoreFIPTrials = 4

// Restore is the outcome of RunRestore.
type Restore struct {
	// Alias is from deleting one alias IP of a private network to it
	// being back; FloatingIP the same for the floating IP address on the
	// public NIC.
	Alias, FloatingIP bench.Summary
}

// RunRestore measures, with hc-agent running on a configured server that
// has a floating IP assigned, the time from someone else deleting one of
// the server's alias IPs (as a DHCP client's flush or an operator's `ip
// addr del` does) to it being back in the kernel, trials times, and the same
// for the floating IP address (restoreFIPTrials times).
func RunRestore(ctx context.Context, env Env) (Restore, error) {
	var out Restore
	c, err := newCluster(ctx, env, clusterSpec{servers: 1, networks: 1, holder: 0})
	if err != nil {
		return out, err
	}
	defer c.close()
	s := c.servers[0]
	aliases := make([]netip.Addr, restoreAliases)
	for i := range aliases {
		aliases[i] = netip.AddrFrom4([4]byte{10, 1, 0, byte(100 + i)})
	}
	if err := c.cloud.SetAliasIPs(s.Name(), c.nets[0].Name(), aliases); err != nil {
		return out, err
	}
	if _, err := c.startAgent(ctx, s); err != nil {
		return out, err
	}
	e := expect(s, c.fip)
	if _, err := waitConfigured(ctx, s, e, 30*time.Second); err != nil {
		return out, fmt.Errorf("wait for the network: %w%s", err, c.agentLogTail(s))
	}
	nic, err := privateNIC(s, e.nics[0].mac)
	if err != nil {
		return out, err
	}
	h := s.NetlinkHandle()
	link, err := h.LinkByName(nic)
	if err != nil {
		return out, fmt.Errorf("find %s on %s: %w", nic, s.Name(), err)
	}
	pub, err := h.LinkByName(s.PublicNIC())
	if err != nil {
		return out, fmt.Errorf("find %s on %s: %w", s.PublicNIC(), s.Name(), err)
	}
	for _, a := range aliases {
		if err := waitAddr(ctx, h, link, netip.PrefixFrom(a, 32), true, 30*time.Second); err != nil {
			return out, fmt.Errorf("wait for alias ip %s: %w%s", a, err, c.agentLogTail(s))
		}
	}
	// trial deletes p from l and waits for it to be back.
	trials := func(what string, n int, l netlink.Link, prefix func(i int) netip.Prefix) (bench.Summary, error) {
		var (
			samples []time.Duration
			failed  int
			lastErr error
		)
		for i := range n {
			p := prefix(i)
			start := time.Now()
			if err := h.AddrDel(l, &netlink.Addr{IPNet: prefixNet(p)}); err != nil {
				return bench.Summarize(samples, failed), fmt.Errorf("restore %s trial %d: delete %s: %w", what, i+1, p, err)
			}
			if err := waitAddr(ctx, h, l, p, true, 10*time.Second); err != nil {
				failed++
				lastErr = fmt.Errorf("restore %s trial %d: %s not restored: %w", what, i+1, p, err)
				env.Log.Warn("restore trial failed", "what", what, "trial", i+1, "err", err, "log", c.agentLogTail(s))
				continue
			}
			samples = append(samples, time.Since(start))
			if ctx.Err() != nil {
				return bench.Summarize(samples, failed), ctx.Err()
			}
		}
		return bench.Summarize(samples, failed), lastErr
	}
	out.Alias, err = trials("alias ip", env.Trials, link, func(i int) netip.Prefix {
		return netip.PrefixFrom(aliases[i%len(aliases)], 32)
	})
	if err != nil {
		return out, err
	}
	out.FloatingIP, err = trials("floating ip", min(env.Trials, restoreFIPTrials), pub, func(int) netip.Prefix { return e.fip })
	return out, err
}

// waitAddr polls until p is (present) or is not (!present) on link.
func waitAddr(ctx context.Context, h *netlink.Handle, link netlink.Link, p netip.Prefix, present bool, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, configPoll/2, func() (bool, error) {
		ok, err := hasAddr(h, link, p)
		return ok == present, err
	})
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Blackhole is the outcome of RunBlackholeBoot: per trial, from starting
// hc-agent to the black hole being in its metrics (without the pin), and to
// metadata answering and the agent being ready (with the pin).
type Blackhole struct {
	Reported, Reachable, Ready bench.Summary
}

// RunBlackholeBoot measures the metadata black hole at boot (issue 13): the
// private DHCP server has pushed 169.254.169.254/32 via the private gateway
// before hc-agent starts. Without pin_metadata_route it measures the time
// from start to hcagent_metadata_blackholed 1 (metadata cannot be read at
// all); with it, the time to metadata answering from the server and to the
// agent's /status saying ready.
func RunBlackholeBoot(ctx context.Context, env Env) (Blackhole, error) {
	var out Blackhole
	c, err := newCluster(ctx, env, clusterSpec{servers: 1, networks: 1, holder: -1, dhcp: true})
	if err != nil {
		return out, err
	}
	defer c.close()
	s := c.servers[0]
	nic, err := privateNIC(s, expect(s, nil).nics[0].mac)
	if err != nil {
		return out, err
	}
	gw := c.nets[0].Gateway()
	blackhole := func() error {
		_, err := s.Exec(ctx, "ip", "route", "replace", simcloud.MetadataAddr.String()+"/32", "via", gw.String(), "dev", nic, "proto", "dhcp")
		return err
	}
	reset := func() error {
		if err := c.stopAgent(ctx, s); err != nil {
			return err
		}
		cfg, err := c.agentConfig(s)
		if err != nil {
			return err
		}
		if err := os.RemoveAll(cfg.StateDir); err != nil {
			return fmt.Errorf("remove agent state %s: %w", cfg.StateDir, err)
		}
		// The pin replaced the black hole (same key): put it back.
		return blackhole()
	}
	if err := blackhole(); err != nil {
		return out, err
	}
	if err := metadataAnswers(ctx, s); err == nil {
		return out, errors.New("metadata answers through the black hole: the scenario is broken")
	}

	var errs []error
	for _, pin := range []bool{false, true} {
		c.agentCfg = func(cfg *config.Config) { cfg.PrivateNetworks.PinMetadataRoute = pin }
		var reported, reachable, ready []time.Duration
		failed := 0
		for i := range env.Trials {
			start := time.Now()
			if _, err := c.startAgent(ctx, s); err != nil {
				return out, err
			}
			var err error
			if pin {
				err = pollFor(ctx, 10*time.Second, func() bool { return metadataAnswers(ctx, s) == nil })
				if err == nil {
					reachable = append(reachable, time.Since(start))
					err = pollFor(ctx, 10*time.Second, func() bool {
						st, err := c.agentStatus(ctx, s)
						return err == nil && st.Ready
					})
					if err == nil {
						ready = append(ready, time.Since(start))
					}
				}
			} else {
				err = pollFor(ctx, 10*time.Second, func() bool {
					body, err := s.Get(ctx, "http://127.0.0.1:9183/metrics")
					return err == nil && strings.Contains(body, "\nhcagent_metadata_blackholed 1\n")
				})
				if err == nil {
					reported = append(reported, time.Since(start))
				}
			}
			if err != nil {
				failed++
				errs = append(errs, fmt.Errorf("black hole trial %d (pin %v): %w", i+1, pin, err))
				env.Log.Warn("black hole trial failed", "trial", i+1, "pin", pin, "err", err, "log", c.agentLogTail(s))
			}
			if err := reset(); err != nil {
				return out, fmt.Errorf("reset after black hole trial %d: %w", i+1, err)
			}
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
		if pin {
			out.Reachable, out.Ready = bench.Summarize(reachable, failed), bench.Summarize(ready, failed)
		} else {
			out.Reported = bench.Summarize(reported, failed)
		}
	}
	return out, errors.Join(errs...)
}

// metadataAnswers reads the instance ID from the metadata service as the
// server, with a short timeout: through the black hole it times out. The
// service is in a namespace next door and answers in a few milliseconds;
// the timeout bounds the resolution of the "reachable" figure, since a
// request sent before the pin waits for it.
func metadataAnswers(ctx context.Context, s *simcloud.Server) error {
	ctx, cancel := context.WithTimeout(ctx, 25*time.Millisecond)
	defer cancel()
	_, err := s.Get(ctx, "http://"+simcloud.MetadataAddr.String()+"/hetzner/v1/metadata/instance-id")
	return err
}

// pollFor polls cond every 5 ms until it holds or timeout passes.
func pollFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, 5*time.Millisecond, func() (bool, error) { return cond(), nil })
}
