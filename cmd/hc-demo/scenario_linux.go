package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// Probe settings: a request every 20 ms, each given 200 ms.
const (
	probeInterval = 20 * time.Millisecond
	probeTimeout  = 200 * time.Millisecond
)

// world is what the scenario builds.
type world struct {
	c       *simcloud.Cloud
	sim     *cloudapitest.Sim
	token   string
	dir     string // per-run files: configs, token, gossip key
	servers []*simcloud.Server
	fip4    *simcloud.FloatingIP
	fip6    *simcloud.FloatingIP
	agents  map[string]*simcloud.Proc
	log     *slog.Logger
	// tokenFile and keyFile are written by startAgents; privateVIP says
	// whether the agents' group holds the private VIP (privatevip_linux.go).
	tokenFile, keyFile string
	privateVIP         bool
}

// scenario runs the demo's steps. The cloud is torn down (and checked) in
// a deferred step, so it goes away on errors and on Ctrl-C as well.
func scenario(ctx context.Context, d *demo, o options, log *slog.Logger) (err error) {
	dir, err := os.MkdirTemp("", "hc-demo-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	defer os.RemoveAll(dir)
	w := &world{dir: dir, agents: map[string]*simcloud.Proc{}, log: log}
	defer func() {
		if w.c == nil {
			return
		}
		terr := d.step("Tear down and check that nothing is left", func() error { return w.teardown(d) })
		err = errors.Join(err, terr)
	}()

	agent := o.agent
	if agent != "" {
		// ip netns exec runs it from our working directory, but absolute
		// paths read better in the process list.
		if abs, aerr := filepath.Abs(agent); aerr == nil {
			agent = abs
		}
		if st, serr := os.Stat(agent); serr != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			fmt.Fprintf(d.out, "note: no executable hc-agent at %q; the steps that need it are skipped\n", agent)
			agent = ""
		}
	}

	steps := []struct {
		title string
		fn    func() error
	}{
		{"Build the simulated cloud (3 servers, 2 private networks, 2 floating IPs)", func() error { return w.build(ctx, d) }},
		{"Read the metadata service from inside each server", func() error { return w.showMetadata(ctx, d) }},
		{"Start an HTTP service on each server that answers with its name", func() error { return w.startNameServices(ctx, d) }},
		{"Start hc-agent on each server", func() error { return w.startAgents(ctx, d, agent) }},
		{"Private networks configured on boot", func() error { return w.waitPrivateOnBoot(ctx, d, agent) }},
		{"The client reaches the floating IPs", func() error { return w.showFloatingIPs(ctx, d, agent) }},
		{"Hot-attach network net-b to srv-2", func() error { return w.hotAttach(ctx, d, agent) }},
		{"Crash the floating IPs' holder while the client probes them", func() error { return w.crashHolder(ctx, d, agent) }},
		{"Planned shutdown of the holder (hand-over)", func() error { return w.plannedShutdown(ctx, d, agent) }},
		{"Crash the private VIP's holder (alias IP in net-a) while a client in net-a probes it", func() error { return w.privateVIPFailover(ctx, d, agent) }},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		if err := d.step(s.title, s.fn); err != nil {
			return err
		}
	}
	if d.failed() {
		return errors.New("some steps failed")
	}
	return nil
}

func (w *world) build(ctx context.Context, d *demo) error {
	c, err := simcloud.New(ctx, simcloud.WithLogger(w.log))
	if err != nil {
		return err
	}
	w.c = c
	for _, n := range []simcloud.NetworkSpec{
		{Name: "net-a", Network: netip.MustParsePrefix("10.0.0.0/16"), Subnet: netip.MustParsePrefix("10.0.0.0/24")},
		{Name: "net-b", Network: netip.MustParsePrefix("10.1.0.0/16"), Subnet: netip.MustParsePrefix("10.1.0.0/24")},
	} {
		if _, err := c.AddNetwork(n); err != nil {
			return err
		}
	}
	labels := map[string]string{"hc-agent/group": "web"}
	for _, name := range []string{"srv-1", "srv-2", "srv-3"} {
		s, err := c.AddServer(simcloud.ServerSpec{Name: name, Networks: []string{"net-a"}, Labels: labels})
		if err != nil {
			return err
		}
		w.servers = append(w.servers, s)
	}
	if w.fip4, err = c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "web-v4", Labels: labels}); err != nil {
		return err
	}
	if w.fip6, err = c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "web-v6", IPv6: true, Labels: labels}); err != nil {
		return err
	}
	for _, f := range []*simcloud.FloatingIP{w.fip4, w.fip6} {
		if err := c.RouteFloatingIP(f.Prefix(), "srv-1"); err != nil {
			return err
		}
	}
	w.token = randomHex(32)
	w.sim = cloudapitest.New(cloudapitest.WithTokens(w.token))
	if err := c.ConnectAPI(w.sim); err != nil {
		return err
	}
	if err := w.setUpAliases(); err != nil {
		return err
	}
	d.say("namespaces: %s{cloud,client,net1,net2,srv-1,srv-2,srv-3}", c.RunPrefix())
	for _, s := range w.servers {
		d.say("%s  id %d  public %s, %s  (%s)", s.Name(), s.ID(), s.PublicIPv4(), s.PublicIPv6(), s.PublicMAC())
	}
	d.say("floating IPs: %s %s, %s %s, both assigned to srv-1", w.fip4.Name(), w.fip4.Prefix(), w.fip6.Name(), w.fip6.Prefix())
	d.say("alias IPs in net-a: private VIP %s on srv-1, %s (unrelated) on srv-2", demoPrivateVIP, demoOtherAlias)
	d.say("API simulator at %s, metadata at %s", c.APIEndpoint(), c.MetadataEndpoint())
	return nil
}

func (w *world) showMetadata(ctx context.Context, d *demo) error {
	for _, s := range w.servers {
		t0 := time.Now()
		get := func(key string) (string, error) {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return s.Get(rctx, w.c.MetadataEndpoint()+key)
		}
		host, err := get("/hostname")
		if err != nil {
			return err
		}
		id, err := get("/instance-id")
		if err != nil {
			return err
		}
		ip, err := get("/public-ipv4")
		if err != nil {
			return err
		}
		nets, err := get("/private-networks")
		if err != nil {
			return err
		}
		d.say("from %s (4 requests, %s): hostname %s, instance-id %s, public-ipv4 %s", s.Name(), fmtDur(time.Since(t0)), host, id, ip)
		d.say("  private-networks:\n%s", indent(nets, "    "))
	}
	return nil
}

func (w *world) startNameServices(ctx context.Context, d *demo) error {
	for _, s := range w.servers {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		p, err := s.StartNameService(rctx, 80)
		cancel()
		if err != nil {
			return err
		}
		d.say("%s: name service on :80 (pid %d)", s.Name(), p.PID())
	}
	return nil
}

// startAgents starts hc-agent on every server.
//
// TODO(issue 5): check the flags and config keys against `hc-agent run`
// once it lands; the config below follows config/config.go.
func (w *world) startAgents(ctx context.Context, d *demo, agent string) error {
	if agent == "" {
		// Without the agent, configure what it would on the holder, so the
		// client steps still show the cloud's routing.
		for _, f := range []*simcloud.FloatingIP{w.fip4, w.fip6} {
			if err := w.c.Server(w.c.Holder(f)).ConfigureFloatingIP(f); err != nil {
				return err
			}
		}
		return skip("no hc-agent: the demo configured the floating IPs on their holder instead")
	}
	w.tokenFile = filepath.Join(w.dir, "token")
	if err := os.WriteFile(w.tokenFile, []byte(w.token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	w.keyFile = filepath.Join(w.dir, "gossip.key")
	if err := os.WriteFile(w.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write gossip key: %w", err)
	}
	w.privateVIP = privateVIPSupported(ctx, agent, w.dir)
	for _, s := range w.servers {
		if err := w.startAgent(ctx, s, agent); err != nil {
			return err
		}
		d.say("%s: hc-agent running (pid %d)", s.Name(), w.agents[s.Name()].PID())
	}
	return nil
}

// startAgent writes the server's configuration (once) and starts hc-agent
// there.
func (w *world) startAgent(ctx context.Context, s *simcloud.Server, agent string) error {
	sdir := filepath.Join(w.dir, s.Name())
	cfgPath := filepath.Join(sdir, "config.yaml")
	if _, err := os.Stat(cfgPath); err != nil {
		// peers are the other members (config.Group.Peers).
		var peers []string
		for _, o := range w.servers {
			if _, nets := o.Metadata(); o != s && len(nets) > 0 {
				peers = append(peers, nets[0].IP.String())
			}
		}
		if err := os.MkdirAll(sdir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", sdir, err)
		}
		cfg := agentConfig(sdir, w.c.APIEndpoint(), w.tokenFile, w.keyFile, peers, w.privateIPsLine())
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", cfgPath, err)
		}
	}
	// Set explicitly: a token or endpoint in the caller's environment
	// would win over the config file and must never reach the demo.
	env := []string{"HCLOUD_TOKEN=" + w.token, "HCLOUD_ENDPOINT=" + w.c.APIEndpoint()}
	p, err := s.Start(ctx, "hc-agent", []string{agent, "run", "--config", cfgPath}, env)
	if err != nil {
		return err
	}
	w.agents[s.Name()] = p
	return nil
}

// agentConfig is one server's hc-agent configuration; privateIPs is the
// group's private_ips line or "".
func agentConfig(dir, endpoint, tokenFile, keyFile string, peers []string, privateIPs string) string {
	return fmt.Sprintf(`state_dir: %[1]s/state
runtime_dir: %[1]s/run
metadata:
  poll_interval: 2s
api:
  endpoint: %[2]s
  token_file: %[3]s
groups:
  - name: web
    floating_ips: [web-v4, web-v6]
%[6]s    peers: [%[4]s]
    key_file: %[5]s
    health:
      type: http
      target: http://127.0.0.1/
      interval: 200ms
      timeout: 150ms
`, dir, endpoint, tokenFile, strings.Join(peers, ", "), keyFile, privateIPs)
}

// waitPrivateOnBoot waits until the agent configured each server's private
// NIC as the metadata describes it.
func (w *world) waitPrivateOnBoot(ctx context.Context, d *demo, agent string) error {
	if agent == "" {
		return skip("needs hc-agent")
	}
	t0 := time.Now()
	for _, s := range w.servers {
		_, nets := s.Metadata()
		for _, n := range nets {
			if err := waitAddr(ctx, s, n.IP, 15*time.Second); err != nil {
				return fmt.Errorf("%s: %w: agent output:\n%s", s.Name(), err, w.agentOutput(s))
			}
		}
		out, _ := s.Exec(ctx, "ip", "-br", "-4", "addr", "show")
		d.say("%s after %s:\n%s", s.Name(), fmtDur(time.Since(t0)), indent(out, "  "))
	}
	d.note("all private networks configured %s after the agents started", fmtDur(time.Since(t0)))
	return nil
}

func (w *world) showFloatingIPs(ctx context.Context, d *demo, agent string) error {
	wait := 2 * time.Second
	if agent != "" {
		wait = 20 * time.Second // the group elects a holder first
	}
	for _, f := range []*simcloud.FloatingIP{w.fip4, w.fip6} {
		var got string
		t0 := time.Now()
		err := waitFor(ctx, wait, 50*time.Millisecond, func() (bool, error) {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			var err error
			got, err = w.c.Get(rctx, f.URL())
			return err == nil, nil
		})
		if err != nil {
			return fmt.Errorf("floating ip %s never answered: %w", f.Prefix(), err)
		}
		d.say("GET %s -> %q in %s (the cloud routes it to %s)", f.URL(), got, fmtDur(time.Since(t0)), w.c.Holder(f))
	}
	return nil
}

func (w *world) hotAttach(ctx context.Context, d *demo, agent string) error {
	s := w.c.Server("srv-2")
	t0 := time.Now()
	if err := w.c.AttachNetwork("srv-2", "net-b"); err != nil {
		return err
	}
	_, nets := s.Metadata()
	n := nets[len(nets)-1]
	links, err := s.NetlinkHandle().LinkList()
	if err != nil {
		return fmt.Errorf("list links of srv-2: %w", err)
	}
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == n.MACAddress.String() {
			d.say("new NIC in srv-2: %s %s mtu %d", l.Attrs().Name, l.Attrs().HardwareAddr, l.Attrs().MTU)
		}
	}
	d.say("metadata now lists %s: ip %s, interface_num %d, mac %s", n.NetworkName, n.IP, n.InterfaceNum, n.MACAddress)
	if agent == "" {
		return skip("configuring the new NIC needs hc-agent")
	}
	if err := waitAddr(ctx, s, n.IP, 15*time.Second); err != nil {
		return fmt.Errorf("srv-2: %w: agent output:\n%s", err, w.agentOutput(s))
	}
	d.note("net-b configured on srv-2 %s after the hotplug", fmtDur(time.Since(t0)))
	return nil
}

// crashHolder crashes the server holding the floating IPs and measures the
// client-visible outage until another server answers.
func (w *world) crashHolder(ctx context.Context, d *demo, agent string) error {
	holder := w.c.Holder(w.fip4)
	if holder == "" {
		return errors.New("the IPv4 floating IP is not assigned")
	}
	p4, p6, err := w.startProbes(ctx)
	if err != nil {
		return err
	}
	defer p4.Stop()
	defer p6.Stop()
	crashAt := time.Now()
	if err := w.c.Crash(holder); err != nil {
		return err
	}
	d.say("crashed %s at t=%s", holder, fmtDur(crashAt.Sub(d.start)))
	if agent == "" {
		// What the agent does, done by hand right away through the API: the
		// outage measured is the floor that the cloud's routing allows.
		for _, f := range []*simcloud.FloatingIP{w.fip4, w.fip6} {
			if err := w.c.Server("srv-2").ConfigureFloatingIP(f); err != nil {
				return err
			}
			if err := w.assign(ctx, "srv-2", f); err != nil {
				return err
			}
		}
		d.say("no hc-agent: the demo assigned both floating IPs to srv-2 through the API at once")
	}
	return w.reportFailover(ctx, d, holder, p4, p6)
}

// plannedShutdown stops the holder's agent with SIGTERM: it should hand
// the floating IPs over before it exits.
func (w *world) plannedShutdown(ctx context.Context, d *demo, agent string) error {
	if agent == "" {
		return skip("needs hc-agent")
	}
	holder := w.c.Holder(w.fip4)
	p, ok := w.agents[holder]
	if !ok {
		return fmt.Errorf("no agent runs on the holder %q", holder)
	}
	p4, p6, err := w.startProbes(ctx)
	if err != nil {
		return err
	}
	defer p4.Stop()
	defer p6.Stop()
	d.say("SIGTERM to hc-agent on %s", holder)
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	t0 := time.Now()
	serr := p.Stop(sctx, syscall.SIGTERM)
	d.say("hc-agent on %s exited after %s (%v)", holder, fmtDur(time.Since(t0)), serr)
	// The name service keeps running: a planned shutdown of the agent
	// alone must not need the service to fail first.
	return w.reportFailover(ctx, d, holder, p4, p6)
}

// startProbes starts one probe per floating IP and waits for both to see an
// answer, so the outage is measured from a working state.
func (w *world) startProbes(ctx context.Context) (p4, p6 *simcloud.Probe, err error) {
	p4 = w.c.StartProbe(ctx, w.fip4.URL(), probeInterval, probeTimeout)
	p6 = w.c.StartProbe(ctx, w.fip6.URL(), probeInterval, probeTimeout)
	err = waitFor(ctx, 5*time.Second, 10*time.Millisecond, func() (bool, error) {
		a, ok4 := p4.Last()
		b, ok6 := p6.Last()
		return ok4 && ok6 && a.OK() && b.OK(), nil
	})
	if err != nil {
		p4.Stop()
		p6.Stop()
		return nil, nil, fmt.Errorf("floating ips do not answer before the test: %w", err)
	}
	return p4, p6, nil
}

// reportFailover waits until both floating IPs answer from a server other
// than old, then prints the client-visible outages.
func (w *world) reportFailover(ctx context.Context, d *demo, old string, p4, p6 *simcloud.Probe) error {
	err := waitFor(ctx, 30*time.Second, 10*time.Millisecond, func() (bool, error) {
		a, ok4 := p4.Last()
		b, ok6 := p6.Last()
		return ok4 && ok6 && a.OK() && b.OK() && a.Server != old && b.Server != old, nil
	})
	// Let the probes see a few more answers so the last outage is closed.
	settle := time.NewTimer(5 * probeInterval)
	select {
	case <-settle.C:
	case <-ctx.Done():
	}
	for _, x := range []struct {
		f *simcloud.FloatingIP
		p *simcloud.Probe
	}{{w.fip4, p4}, {w.fip6, p6}} {
		samples := x.p.Stop()
		o, found := simcloud.LongestOutage(samples)
		switch {
		case found:
			d.note("%s: %s -> %s, client-visible outage %s (%d failed requests)", x.f.Name(), orNone(o.Before), orNone(o.After), fmtDur(o.Duration()), o.Failures)
		default:
			last, _ := x.p.Last()
			d.note("%s: no failed request; now answered by %s", x.f.Name(), orNone(last.Server))
		}
	}
	if err != nil {
		return fmt.Errorf("no other server took over the floating ips: %w", err)
	}
	return nil
}

// assign assigns the floating IP to the server through the API simulator,
// from inside that server, as hc-agent would.
func (w *world) assign(ctx context.Context, server string, f *simcloud.FloatingIP) error {
	s := w.c.Server(server)
	url := fmt.Sprintf("%s/floating_ips/%d/actions/assign", w.c.APIEndpoint(), f.ID())
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"server":%d}`, s.ID())))
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", f.Name(), server, err)
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", f.Name(), server, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("assign %s to %s: status %d", f.Name(), server, resp.StatusCode)
	}
	return nil
}

func (w *world) teardown(d *demo) error {
	agents := len(w.agents)
	err := w.c.Close()
	if w.sim != nil {
		w.sim.Close()
	}
	left := w.c.Leftovers()
	if len(left) > 0 {
		return errors.Join(err, fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
	}
	d.note("removed every namespace of %s* (and with them all veths and the bridge), killed %d agents and the name services; nothing left", w.c.RunPrefix(), agents)
	return err
}

func (w *world) agentOutput(s *simcloud.Server) string {
	p, ok := w.agents[s.Name()]
	if !ok {
		return "(no agent)"
	}
	return indent(lastLines(p.Output(), 20), "  ")
}

// waitAddr waits until the server has ip configured on some link.
func waitAddr(ctx context.Context, s *simcloud.Server, ip netip.Addr, timeout time.Duration) error {
	err := waitFor(ctx, timeout, 20*time.Millisecond, func() (bool, error) {
		addrs, err := s.NetlinkHandle().AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return false, fmt.Errorf("list addresses: %w", err)
		}
		return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(ip.AsSlice()) }), nil
	})
	if err != nil {
		return fmt.Errorf("wait for address %s: %w", ip, err)
	}
	return nil
}

// waitFor polls cond every interval until it is true, returns an error, or
// timeout passes.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() (bool, error)) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("interrupted: %w", parent.Err())
			}
			return fmt.Errorf("gave up after %s", fmtDur(timeout))
		case <-tick.C:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
