package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// Private VIPs of the tests, in net-a (10.0.0.0/16, subnet 10.0.0.0/24):
// an alias VIP lies inside the subnet, a route VIP inside the network but
// outside the subnet.
var (
	aliasVIP = netip.MustParseAddr("10.0.0.100")
	routeVIP = netip.MustParseAddr("10.0.5.50")
	// otherAliases are alias IPs of each server that have nothing to do
	// with the group: a move must keep every one of them.
	otherAliases = map[string][]netip.Addr{
		"alpha": {netip.MustParseAddr("10.0.0.50")},
		"beta":  {netip.MustParseAddr("10.0.0.60"), netip.MustParseAddr("10.0.0.61")},
		"gamma": {netip.MustParseAddr("10.0.0.70")},
	}
)

// privateOpts describes the group of a private VIP world.
type privateOpts struct {
	via string // "alias" or "route"
	// floating adds the floating IP "vip" to the group (egress needs it);
	// without it the group holds only the private VIP, so every API action
	// of a failover is the private VIP's.
	floating bool
	egress   bool
	maxMoves int
}

// privateVIP is the private VIP a world's group holds, and the private
// client that probes it.
type privateVIP struct {
	w      *world
	opts   privateOpts
	ip     netip.Addr
	client *simcloud.Server
}

// privateWorld builds alpha, beta and gamma with other alias IPs each, a
// group "web" with one private VIP, and a private client, starts the
// agents and waits until the VIP answers and every agent sees the group.
func privateWorld(t *testing.T, o privateOpts) (*world, *privateVIP, string) {
	t.Helper()
	requirePrivateVIPs(t)
	w := newWorld(t, spec{servers: []string{"alpha", "beta", "gamma"}, group: true, maxMoves: o.maxMoves})
	p := &privateVIP{w: w, opts: o, ip: aliasVIP}
	if o.via == "route" {
		p.ip = routeVIP
	}
	for name, ips := range otherAliases {
		require.NoError(t, w.c.SetAliasIPs(name, "net-a", ips))
	}
	var err error
	p.client, err = w.c.AddPrivateClient("net-a")
	require.NoError(t, err)
	for _, name := range w.spec.servers {
		sdir := filepath.Join(w.dir, name)
		require.NoError(t, os.MkdirAll(sdir, 0o700))
		// startAgent keeps a config that is already there.
		require.NoError(t, os.WriteFile(filepath.Join(sdir, "config.yaml"), []byte(p.config(name, sdir)), 0o600))
	}
	w.startAgents()
	t0 := time.Now()
	h := p.waitAnswer(45*time.Second, func(string) bool { return true })
	t.Logf("private %s VIP %s answered by %s %s after the agents started", o.via, p.ip, h, time.Since(t0).Round(time.Millisecond))
	w.waitMembers(20 * time.Second)
	return w, p, h
}

// config is one server's hc-agent configuration with the private VIP group.
func (p *privateVIP) config(self, dir string) string {
	w := p.w
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s/state\nruntime_dir: %s/run\n", dir, dir)
	b.WriteString("log:\n  level: info\nmetadata:\n  poll_interval: 2s\n")
	fmt.Fprintf(&b, "api:\n  endpoint: %s\n", w.c.APIEndpoint())
	keyFile := filepath.Join(w.dir, "gossip.key")
	if _, err := os.Stat(keyFile); err != nil {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		require.NoError(w.t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	}
	var peers []string
	for _, name := range w.others(self) {
		_, nets := w.c.Server(name).Metadata()
		peers = append(peers, nets[0].IP.String())
	}
	b.WriteString("groups:\n  - name: web\n")
	if p.opts.floating {
		b.WriteString("    floating_ips: [vip]\n")
	}
	fmt.Fprintf(&b, "    private_ips: [{ip: %s, via: %s}]\n", p.ip, p.opts.via)
	if p.opts.egress {
		b.WriteString("    egress: true\n")
	}
	fmt.Fprintf(&b, "    peers: [%s]\n    key_file: %s\n", strings.Join(peers, ", "), keyFile)
	b.WriteString("    health:\n      type: http\n      target: http://127.0.0.1/\n      interval: 200ms\n      timeout: 150ms\n")
	if p.opts.maxMoves > 0 {
		fmt.Fprintf(&b, "    max_moves_per_minute: %d\n", p.opts.maxMoves)
	}
	return b.String()
}

func (p *privateVIP) url() string { return "http://" + p.ip.String() + "/" }

// answer is who answers on the private VIP from the private client (""
// on error).
func (p *privateVIP) answer() string {
	ctx, cancel := context.WithTimeout(p.w.ctx, 300*time.Millisecond)
	defer cancel()
	got, err := p.client.Get(ctx, p.url())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(got)
}

// waitAnswer waits until the private VIP answers from a server accepted by
// ok and returns that server.
func (p *privateVIP) waitAnswer(timeout time.Duration, ok func(string) bool) string {
	w := p.w
	w.t.Helper()
	var got string
	deadline := time.Now().Add(timeout)
	waitFor(w.t, timeout+time.Second, 20*time.Millisecond, "private vip answer", func() bool {
		w.requireAgentsRunning()
		got = p.answer()
		if time.Now().After(deadline) {
			w.logStatus()
			w.t.Fatalf("no acceptable answer on private vip %s after %s (last: %q)", p.ip, timeout, got)
		}
		return got != "" && ok(got)
	})
	return got
}

// probe starts a probe of the private VIP from the private client and
// waits for its first answer.
func (p *privateVIP) probe(interval time.Duration) *simcloud.Probe {
	w := p.w
	w.t.Helper()
	pr := p.client.StartProbe(w.ctx, p.url(), interval, probeTimeout)
	w.t.Cleanup(func() { pr.Stop() })
	waitFor(w.t, 5*time.Second, 10*time.Millisecond, "private vip probe answers", func() bool {
		s, ok := pr.Last()
		return ok && s.OK()
	})
	return pr
}

// waitMoved waits until a server other than old answers on the private
// VIP, stops the probe and logs the client-visible outage.
func (p *privateVIP) waitMoved(pr *simcloud.Probe, old string, t0 time.Time) (string, []simcloud.Sample) {
	w := p.w
	w.t.Helper()
	now := p.waitAnswer(45*time.Second, func(s string) bool { return s != old })
	took := time.Since(t0)
	waitFor(w.t, 5*time.Second, probeInterval, "probe sees the new holder", func() bool {
		s, ok := pr.Last()
		return ok && s.OK() && s.Server != old
	})
	samples := pr.Stop()
	if o, found := simcloud.LongestOutage(samples); found {
		w.t.Logf("private vip %s -> %s after %s; client-visible outage %s (%d failed requests)", old, now, took.Round(time.Millisecond), o.Duration().Round(time.Millisecond), o.Failures)
	} else {
		w.t.Logf("private vip %s -> %s after %s; no failed client request", old, now, took.Round(time.Millisecond))
	}
	return now, samples
}

// aliasLists returns every server's alias IPs in net-a as the API reports
// them.
func (p *privateVIP) aliasLists() map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	netID := p.w.c.Network("net-a").ID()
	for _, name := range p.w.spec.servers {
		out[name] = p.w.sim.AliasIPs(p.w.c.Server(name).ID(), netID)
	}
	return out
}

// apiHolders returns the servers the API says hold the private VIP: whose
// attachment lists it (alias), or that are the gateway of a route to it
// (route).
func (p *privateVIP) apiHolders() []string {
	var out []string
	if p.opts.via == "alias" {
		for name, ips := range p.aliasLists() {
			if slices.Contains(ips, p.ip) {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	n, ok := p.w.sim.Network(p.w.c.Network("net-a").ID())
	require.True(p.w.t, ok)
	for _, r := range n.Routes {
		if r.Destination != netip.PrefixFrom(p.ip, 32) {
			continue
		}
		for _, name := range p.w.spec.servers {
			_, nets := p.w.c.Server(name).Metadata()
			if nets[0].IP == r.Gateway {
				out = append(out, name)
			}
		}
	}
	return out
}

// checkAliasesKept asserts that every server's alias list in the API is its
// other aliases, plus the VIP on holder (alias mode) and nowhere else.
func (p *privateVIP) checkAliasesKept(t *testing.T, holder string) {
	t.Helper()
	got := p.aliasLists()
	for _, name := range p.w.spec.servers {
		want := slices.Clone(otherAliases[name])
		if p.opts.via == "alias" && name == holder {
			want = append(want, p.ip)
		}
		assert.ElementsMatch(t, want, got[name], "alias ips of %s in the API", name)
	}
}

// eachVia runs a subtest per private VIP kind.
func eachVia(t *testing.T, fn func(t *testing.T, via string)) {
	for _, via := range []string{"alias", "route"} {
		t.Run(via, func(t *testing.T) { fn(t, via) })
	}
}

func TestPrivateVIPHolderCrash(t *testing.T) {
	eachVia(t, func(t *testing.T, via string) {
		w, p, h := privateWorld(t, privateOpts{via: via})
		p.checkAliasesKept(t, h)
		before := p.aliasLists()
		pr := p.probe(probeInterval)
		t0 := time.Now()
		w.crash(h)
		now, _ := p.waitMoved(pr, h, t0)
		assert.Equal(t, []string{now}, p.apiHolders(), "the API has the VIP on the server that answers")
		p.checkAliasesKept(t, now)
		t.Logf("alias lists before %v, after %v", before, p.aliasLists())
		if via == "alias" {
			waitFor(t, 15*time.Second, 100*time.Millisecond, "the new holder's metadata lists the VIP", func() bool {
				_, nets := w.c.Server(now).Metadata()
				return slices.Contains(nets[0].AliasIPs, p.ip)
			})
		}
	})
}

func TestPrivateVIPStandbysRaceOneHolder(t *testing.T) {
	eachVia(t, func(t *testing.T, via string) {
		w, p, h := privateWorld(t, privateOpts{via: via})
		w.crash(h)
		now := p.waitAnswer(45*time.Second, func(s string) bool { return s != h })
		standbys := w.others(h)
		holding := func() []string {
			return slices.DeleteFunc(slices.Clone(standbys), func(s string) bool { return !w.hasAddr(s, p.ip) })
		}
		waitFor(t, 15*time.Second, 50*time.Millisecond, "exactly one standby has the VIP configured", func() bool { return len(holding()) == 1 })
		assert.Equal(t, []string{now}, holding(), "the server with the address is the one that answers")
		assert.Equal(t, []string{now}, p.apiHolders(), "the API agrees")
		pr := p.probe(probeInterval)
		w.observe(3 * time.Second) // observation window: nobody else answers
		samples := pr.Stop()
		assert.Equal(t, []string{now}, servers(samples), "who answered after the race")
		p.checkAliasesKept(t, now)
	})
}

// privateFaults are the API faults of issue 12, on the private VIP's own
// requests (the group holds no floating IP, so every action is the VIP's).
func privateFaults(via string) []apiFault {
	pattern := "POST /servers/*/actions/change_alias_ips"
	if via == "route" {
		pattern = "POST /networks/*/actions/*_route"
	}
	return []apiFault{
		{
			name:   "locked",
			inject: func(sim *cloudapitest.Sim) { sim.FailNext(pattern, http.StatusLocked, "locked", 3) },
			hit:    func(log []cloudapitest.RequestRecord) bool { return count(log, pattern, http.StatusLocked) == 3 },
		},
		{
			name: "5xx",
			inject: func(sim *cloudapitest.Sim) {
				sim.FailNext(pattern, http.StatusServiceUnavailable, "unavailable", 2)
				sim.FailNext(pattern, http.StatusInternalServerError, "server_error", 1)
			},
			hit: func(log []cloudapitest.RequestRecord) bool {
				return count(log, pattern, http.StatusServiceUnavailable) == 2 && count(log, pattern, http.StatusInternalServerError) == 1
			},
		},
		{
			name:   "action error",
			inject: func(sim *cloudapitest.Sim) { sim.FailActions(1) },
			// The failed action is repeated: one more accepted request
			// than a move needs (two for alias: remove, add; two for
			// route: delete, add).
			hit: func(log []cloudapitest.RequestRecord) bool { return count(log, pattern, http.StatusCreated) >= 3 },
		},
	}
}

func TestPrivateVIPAPIFaults(t *testing.T) {
	eachVia(t, func(t *testing.T, via string) {
		w, p, h := privateWorld(t, privateOpts{via: via, maxMoves: 20})
		crashed := ""
		outer := w.t
		for _, f := range privateFaults(via) {
			t.Run(f.name, func(t *testing.T) {
				w.t = t
				if crashed != "" {
					w.revive(crashed)
				}
				mark := len(w.sim.RequestLog())
				f.inject(w.sim)
				pr := p.probe(probeInterval)
				t0 := time.Now()
				w.crash(h)
				now, _ := p.waitMoved(pr, h, t0)
				assert.Equal(t, []string{now}, p.apiHolders(), "the move completed after the fault")
				assert.True(t, f.hit(w.sim.RequestLog()[mark:]), "the fault hit the move")
				p.checkAliasesKept(t, now)
				crashed, h = h, now
			})
			if t.Failed() {
				break // the shared world is in an unknown state
			}
		}
		w.t = outer
	})
}

func TestPrivateVIPPlannedHandOver(t *testing.T) {
	eachVia(t, func(t *testing.T, via string) {
		w, p, h := privateWorld(t, privateOpts{via: via})
		pr := p.probe(50 * time.Millisecond)
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
		defer cancel()
		w.stopped[h] = true
		err := w.agents[h].Stop(ctx, syscall.SIGTERM)
		t.Logf("agent on %s exited %s after SIGTERM (%v)", h, time.Since(t0).Round(time.Millisecond), err)
		now, samples := p.waitMoved(pr, h, t0)
		// As for floating IPs (TestPlannedShutdownHandOver): a connection
		// accepted by the old holder just before the move is reset by the
		// new one; any other failure is an outage.
		w.checkHandOver(t, samples, t0)
		assert.Equal(t, []string{now}, p.apiHolders())
		p.checkAliasesKept(t, now)
	})
}

// TestEgressFollowsHolder checks egress: true. A server in the client
// namespace records the source address of connections: the holder's come
// from the floating IP, and after a hand-over the new holder's do, while
// the old holder's come from its own address again.
func TestEgressFollowsHolder(t *testing.T) {
	w, p, h := privateWorld(t, privateOpts{via: "alias", floating: true, egress: true})
	rec, err := w.c.StartSourceRecorder(8080)
	require.NoError(t, err)
	source := func(server string) netip.Addr {
		ctx, cancel := context.WithTimeout(w.ctx, 2*time.Second)
		defer cancel()
		got, err := w.c.Server(server).Get(ctx, rec.URL())
		if err != nil {
			return netip.Addr{}
		}
		a, _ := netip.ParseAddr(strings.TrimSpace(got))
		return a
	}
	fip := w.vip.Addr()
	waitFor(t, 10*time.Second, 100*time.Millisecond, "the holder's outgoing connections leave from the floating ip", func() bool { return source(h) == fip })
	for _, s := range w.others(h) {
		assert.Equal(t, w.c.Server(s).PublicIPv4(), source(s), "a standby's connections leave from its own address")
	}

	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	w.stopped[h] = true
	_ = w.agents[h].Stop(ctx, syscall.SIGTERM)
	now := w.waitAnswer(30*time.Second, func(s string) bool { return s != h })
	waitFor(t, 10*time.Second, 100*time.Millisecond, "the new holder's outgoing connections leave from the floating ip", func() bool { return source(now) == fip })
	waitFor(t, 10*time.Second, 100*time.Millisecond, "the old holder's leave from its own address again", func() bool {
		return source(h) == w.c.Server(h).PublicIPv4()
	})
	assert.Equal(t, now, p.waitAnswer(10*time.Second, func(string) bool { return true }), "the private vip moved with the group")
	t.Logf("sources seen: %v", slices.Compact(rec.Sources()))
}

// requirePrivateVIPs skips the test when the hc-agent under test does not
// know the private_ips key yet (the tests and the simulator land before the
// product side of issue 12).
func requirePrivateVIPs(t *testing.T) {
	t.Helper()
	requireAgent(t)
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte("groups:\n  - name: web\n    private_ips: [{ip: 10.0.0.100, via: alias}]\n"), 0o600))
	out, _ := exec.CommandContext(t.Context(), agentBin, "check-config", "--config", path).CombinedOutput()
	if strings.Contains(string(out), "private_ips: unknown key") {
		t.Skip("this hc-agent does not support private VIPs (private_ips: unknown key)")
	}
}
