package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// configPoll is how often the harness reads the server's addresses and
// routes while it waits for the agent to configure them; it is the
// resolution of the boot and hotplug figures.
const configPoll = 2 * time.Millisecond

// expectation is what "configured" means for one server: the address of
// every private NIC (found by MAC) with its route to the whole network via
// the gateway, and the floating IP on the public NIC.
type expectation struct {
	nics []nicExpect
	fip  netip.Prefix // zero when none
}

type nicExpect struct {
	mac     net.HardwareAddr
	ip      netip.Addr
	network netip.Prefix
}

// expect builds the expectation of server s from what its metadata shows.
func expect(s *simcloud.Server, fip *simcloud.FloatingIP) expectation {
	_, nets := s.Metadata()
	var e expectation
	for _, n := range nets {
		e.nics = append(e.nics, nicExpect{mac: n.MACAddress, ip: n.IP, network: n.Network})
	}
	if fip != nil {
		e.fip = fip.HostPrefix()
	}
	return e
}

// configured reports whether s's kernel state meets e.
func configured(s *simcloud.Server, e expectation) (bool, error) {
	h := s.NetlinkHandle()
	links, err := h.LinkList()
	if err != nil {
		return false, fmt.Errorf("list links of %s: %w", s.Name(), err)
	}
	byMAC := map[string]netlink.Link{}
	for _, l := range links {
		byMAC[l.Attrs().HardwareAddr.String()] = l
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("list routes of %s: %w", s.Name(), err)
	}
	for _, n := range e.nics {
		l, ok := byMAC[n.mac.String()]
		if !ok || l.Attrs().OperState == netlink.OperDown {
			return false, nil
		}
		if ok, err := hasAddr(h, l, netip.PrefixFrom(n.ip, 32)); !ok || err != nil {
			return false, err
		}
		if !hasRoute(routes, l.Attrs().Index, n.network) {
			return false, nil
		}
	}
	if e.fip.IsValid() {
		l, ok := byMAC[s.PublicMAC().String()]
		if !ok {
			return false, fmt.Errorf("find public NIC of %s: not found", s.Name())
		}
		return hasAddr(h, l, e.fip)
	}
	return true, nil
}

func hasAddr(h *netlink.Handle, l netlink.Link, p netip.Prefix) (bool, error) {
	fam := netlink.FAMILY_V4
	if p.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := h.AddrList(l, fam)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("list addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == p.Addr() && ones == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}

func hasRoute(routes []netlink.Route, link int, dst netip.Prefix) bool {
	for _, r := range routes {
		if r.LinkIndex != link || r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ip, ok := netip.AddrFromSlice(r.Dst.IP); ok && ip.Unmap() == dst.Addr() && ones == dst.Bits() {
			return true
		}
	}
	return false
}

// waitConfigured polls s until it meets e and returns when it first did.
func waitConfigured(ctx context.Context, s *simcloud.Server, e expectation, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var at time.Time
	err := poll(ctx, configPoll, func() (bool, error) {
		ok, err := configured(s, e)
		if ok {
			at = time.Now()
		}
		return ok, err
	})
	return at, err
}

// unconfigure removes what the agent configured on s so that the next
// boot trial starts from a fresh server: private NICs down and flushed
// (their routes go with them), the floating IP removed, the agent's state
// directory emptied.
func (c *cluster) unconfigure(ctx context.Context, s *simcloud.Server, e expectation) error {
	var errs []error
	for _, n := range e.nics {
		nic, err := privateNIC(s, n.mac)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := s.Exec(ctx, "ip", "addr", "flush", "dev", nic); err != nil {
			errs = append(errs, err)
		}
		if _, err := s.Exec(ctx, "ip", "link", "set", nic, "down"); err != nil {
			errs = append(errs, err)
		}
	}
	if e.fip.IsValid() {
		// The agent may have removed it on shutdown, or never added it.
		if l, err := s.NetlinkHandle().LinkByName(s.PublicNIC()); err != nil {
			errs = append(errs, fmt.Errorf("find public NIC of %s: %w", s.Name(), err))
		} else if ok, err := hasAddr(s.NetlinkHandle(), l, e.fip); err != nil {
			errs = append(errs, err)
		} else if ok {
			if _, err := s.Exec(ctx, "ip", "addr", "del", e.fip.String(), "dev", s.PublicNIC()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	cfg, err := c.agentConfig(s)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("remove agent state %s: %w", cfg.StateDir, err))
	}
	return errors.Join(errs...)
}

// RunBoot measures, for a server with networks private networks and a
// floating IP assigned to it, the time from starting hc-agent to all of
// them being configured in the kernel, trials times.
func RunBoot(ctx context.Context, env Env, networks int) (bench.Summary, error) {
	c, err := newCluster(ctx, env, clusterSpec{servers: 1, networks: networks, holder: 0})
	if err != nil {
		return bench.Summary{}, err
	}
	defer c.close()
	s := c.servers[0]
	e := expect(s, c.fip)
	var (
		samples []time.Duration
		failed  int
		lastErr error
	)
	for i := range env.Trials {
		start := time.Now()
		if _, err := c.startAgent(ctx, s); err != nil {
			return bench.Summarize(samples, failed), err
		}
		at, err := waitConfigured(ctx, s, e, 30*time.Second)
		if err != nil {
			failed++
			lastErr = fmt.Errorf("boot trial %d: not configured: %w", i+1, err)
			env.Log.Warn("boot trial failed", "trial", i+1, "err", err, "log", c.agentLogTail(s))
		} else {
			samples = append(samples, at.Sub(start))
		}
		if err := c.stopAgent(ctx, s); err != nil {
			return bench.Summarize(samples, failed), fmt.Errorf("stop agent after boot trial %d: %w", i+1, err)
		}
		if err := c.unconfigure(ctx, s, e); err != nil {
			return bench.Summarize(samples, failed), fmt.Errorf("reset server after boot trial %d: %w", i+1, err)
		}
		if ctx.Err() != nil {
			return bench.Summarize(samples, failed), ctx.Err()
		}
	}
	// The last failure, if any, explains the FAILED column.
	return bench.Summarize(samples, failed), lastErr
}

// RunHotplug measures, with hc-agent running on a configured server, the
// time from a private NIC appearing (the network is attached; the metadata
// shows it at the same moment) to its address and route being configured.
// After each trial the network is detached again.
func RunHotplug(ctx context.Context, env Env) (bench.Summary, error) {
	c, err := newCluster(ctx, env, clusterSpec{servers: 1, networks: 2, holder: -1})
	if err != nil {
		return bench.Summary{}, err
	}
	defer c.close()
	s := c.servers[0]
	spare := c.nets[1].Name()
	// Start with only the first network: the second is the one plugged.
	if err := c.cloud.DetachNetwork(s.Name(), spare); err != nil {
		return bench.Summary{}, err
	}
	if _, err := c.startAgent(ctx, s); err != nil {
		return bench.Summary{}, err
	}
	if _, err := waitConfigured(ctx, s, expect(s, nil), 30*time.Second); err != nil {
		return bench.Summary{}, fmt.Errorf("wait for first network: %w%s", err, c.agentLogTail(s))
	}
	var (
		samples []time.Duration
		failed  int
		lastErr error
	)
	for i := range env.Trials {
		start := time.Now()
		if err := c.cloud.AttachNetwork(s.Name(), spare); err != nil {
			return bench.Summarize(samples, failed), err
		}
		at, err := waitConfigured(ctx, s, expect(s, nil), 30*time.Second)
		if err != nil {
			failed++
			lastErr = fmt.Errorf("hotplug trial %d: not configured: %w", i+1, err)
			env.Log.Warn("hotplug trial failed", "trial", i+1, "err", err, "log", c.agentLogTail(s))
		} else {
			samples = append(samples, at.Sub(start))
		}
		if err := c.cloud.DetachNetwork(s.Name(), spare); err != nil {
			return bench.Summarize(samples, failed), err
		}
		if ctx.Err() != nil {
			return bench.Summarize(samples, failed), ctx.Err()
		}
	}
	// The last failure, if any, explains the FAILED column.
	return bench.Summarize(samples, failed), lastErr
}
