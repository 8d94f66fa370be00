package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// spec describes the world a test builds.
type spec struct {
	servers []string
	// group puts every server in failover group "web" with one IPv4
	// floating IP "vip", first assigned to servers[0], and starts a name
	// service on port 80 on every server.
	group bool
	// configurePrivate lets the simulator configure the private NICs, for
	// failover tests that do not test private networking.
	configurePrivate bool
	// maxMoves is the group's max_moves_per_minute (0: the default).
	maxMoves int
	// ipv6 adds an IPv6 floating IP "vip6" to the group, first assigned
	// with "vip" to servers[0].
	ipv6 bool
	// apiPoll is api.poll_interval (0: the default).
	apiPoll time.Duration
}

// world is one simulated cloud with hc-agent on its servers.
type world struct {
	t      *testing.T
	ctx    context.Context
	c      *simcloud.Cloud
	sim    *cloudapitest.Sim
	token  string
	dir    string
	spec   spec
	vip    *simcloud.FloatingIP
	vip6   *simcloud.FloatingIP      // only with spec.ipv6
	names  map[string]*simcloud.Proc // name services
	agents map[string]*simcloud.Proc
	// stopped marks agents the test stopped on purpose.
	stopped map[string]bool
}

// newWorld builds the cloud; t.Cleanup tears it down and fails the test if
// anything is left behind.
func newWorld(t *testing.T, sp spec) *world {
	t.Helper()
	requireAgent(t)
	ctx := t.Context()
	w := &world{t: t, ctx: ctx, spec: sp, dir: t.TempDir(), names: map[string]*simcloud.Proc{}, agents: map[string]*simcloud.Proc{}, stopped: map[string]bool{}}
	c, err := simcloud.New(ctx, simcloud.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	w.c = c
	t.Cleanup(func() {
		if t.Failed() {
			for name, p := range w.agents {
				t.Logf("agent on %s:\n%s", name, lastLines(p.Output(), 30))
			}
		}
		require.NoError(t, c.Close())
		if w.sim != nil {
			w.sim.Close()
		}
		require.Empty(t, c.Leftovers(), "left behind after Close")
	})
	for _, n := range []simcloud.NetworkSpec{
		{Name: "net-a", Network: netip.MustParsePrefix("10.0.0.0/16"), Subnet: netip.MustParsePrefix("10.0.0.0/24")},
		{Name: "net-b", Network: netip.MustParsePrefix("10.1.0.0/16"), Subnet: netip.MustParsePrefix("10.1.0.0/24")},
	} {
		_, err := c.AddNetwork(n)
		require.NoError(t, err)
	}
	labels := map[string]string{"group": "web"}
	for _, name := range sp.servers {
		_, err := c.AddServer(simcloud.ServerSpec{Name: name, Networks: []string{"net-a"}, Labels: labels, ConfigurePrivate: sp.configurePrivate})
		require.NoError(t, err)
	}
	if sp.group {
		w.vip, err = c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "vip", Labels: labels})
		require.NoError(t, err)
		require.NoError(t, c.RouteFloatingIP(w.vip.Prefix(), sp.servers[0]))
		if sp.ipv6 {
			w.vip6, err = c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "vip6", IPv6: true, Labels: labels})
			require.NoError(t, err)
			require.NoError(t, c.RouteFloatingIP(w.vip6.Prefix(), sp.servers[0]))
		}
	}
	w.token = randomHex(32)
	w.sim = cloudapitest.New(cloudapitest.WithTokens(w.token))
	require.NoError(t, c.ConnectAPI(w.sim))
	if sp.group {
		for _, name := range sp.servers {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			p, err := c.Server(name).StartNameService(rctx, 80)
			cancel()
			require.NoError(t, err)
			w.names[name] = p
		}
	}
	return w
}

// startAgents starts hc-agent on every server.
func (w *world) startAgents() {
	w.t.Helper()
	for _, name := range w.spec.servers {
		w.startAgent(name)
	}
}

// startAgent writes the server's config (once) and starts hc-agent there.
func (w *world) startAgent(name string) *simcloud.Proc {
	w.t.Helper()
	s := w.c.Server(name)
	sdir := filepath.Join(w.dir, name)
	cfgPath := filepath.Join(sdir, "config.yaml")
	if _, err := os.Stat(cfgPath); err != nil {
		require.NoError(w.t, os.MkdirAll(sdir, 0o700))
		require.NoError(w.t, os.WriteFile(cfgPath, []byte(w.config(name, sdir)), 0o600))
	}
	env := []string{"HCLOUD_TOKEN=" + w.token, "HCLOUD_ENDPOINT=" + w.c.APIEndpoint()}
	p, err := s.Start(w.ctx, "hc-agent", []string{agentBin, "run", "--config", cfgPath}, env)
	require.NoError(w.t, err)
	w.agents[name] = p
	w.stopped[name] = false
	return p
}

// config is one server's hc-agent configuration.
func (w *world) config(self, dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s/state\nruntime_dir: %s/run\n", dir, dir)
	b.WriteString("log:\n  level: info\nmetadata:\n  poll_interval: 2s\n")
	fmt.Fprintf(&b, "api:\n  endpoint: %s\n", w.c.APIEndpoint())
	if w.spec.apiPoll > 0 {
		fmt.Fprintf(&b, "  poll_interval: %s\n", w.spec.apiPoll)
	}
	if !w.spec.group {
		return b.String()
	}
	keyFile := filepath.Join(w.dir, "gossip.key")
	if _, err := os.Stat(keyFile); err != nil {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		require.NoError(w.t, os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600))
	}
	// peers are the other members, as config.Group documents it.
	var peers []string
	for _, name := range w.others(self) {
		_, nets := w.c.Server(name).Metadata()
		peers = append(peers, nets[0].IP.String())
	}
	fips := "vip"
	if w.spec.ipv6 {
		fips += ", vip6"
	}
	fmt.Fprintf(&b, `groups:
  - name: web
    floating_ips: [%s]
    peers: [%s]
    key_file: %s
    health:
      type: http
      target: http://127.0.0.1/
      interval: 200ms
      timeout: 150ms
`, fips, strings.Join(peers, ", "), keyFile)
	if w.spec.maxMoves > 0 {
		fmt.Fprintf(&b, "    max_moves_per_minute: %d\n", w.spec.maxMoves)
	}
	return b.String()
}

// requireAgentsRunning fails the test at once when an agent that was not
// stopped by the test exited.
func (w *world) requireAgentsRunning() {
	w.t.Helper()
	for name, p := range w.agents {
		if w.stopped[name] {
			continue
		}
		select {
		case <-p.Done():
			w.t.Fatalf("hc-agent on %s exited (see its output below)", name)
		default:
		}
	}
}

// logStatus logs every running agent's /status, to explain a failure.
func (w *world) logStatus() {
	for name := range w.agents {
		if w.stopped[name] {
			continue
		}
		ctx, cancel := context.WithTimeout(w.ctx, time.Second)
		st, err := w.c.Server(name).Get(ctx, "http://127.0.0.1:9183/status")
		cancel()
		w.t.Logf("status of %s (%v):\n%s", name, err, st)
	}
}

// crash crashes the server (which kills its agent).
func (w *world) crash(name string) {
	w.t.Helper()
	w.stopped[name] = true
	require.NoError(w.t, w.c.Crash(name))
}

// kill SIGKILLs the server's agent and waits for it.
func (w *world) kill(name string) {
	w.t.Helper()
	p := w.agents[name]
	require.NotNil(w.t, p, "no agent on %s", name)
	w.stopped[name] = true
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	_ = p.Stop(ctx, syscall.SIGKILL)
}

// answerOn is who answers on the floating IP f from the client ("" on
// error).
func (w *world) answerOn(f *simcloud.FloatingIP) string {
	ctx, cancel := context.WithTimeout(w.ctx, 300*time.Millisecond)
	defer cancel()
	got, err := w.c.Get(ctx, f.URL())
	if err != nil {
		return ""
	}
	return strings.TrimSpace(got)
}

// waitAnswer waits until the IPv4 floating IP answers from a server
// accepted by ok and returns that server.
func (w *world) waitAnswer(timeout time.Duration, ok func(string) bool) string {
	w.t.Helper()
	return w.waitAnswerOn(w.vip, timeout, ok)
}

// waitAnswerOn waits until the floating IP f answers from a server accepted
// by ok and returns that server.
func (w *world) waitAnswerOn(f *simcloud.FloatingIP, timeout time.Duration, ok func(string) bool) string {
	w.t.Helper()
	var got string
	deadline := time.Now().Add(timeout)
	waitFor(w.t, timeout+time.Second, 20*time.Millisecond, "floating ip answer", func() bool {
		w.requireAgentsRunning()
		got = w.answerOn(f)
		if time.Now().After(deadline) {
			w.logStatus()
			w.t.Fatalf("no acceptable answer on floating ip %s after %s (last: %q)", f.Name(), timeout, got)
		}
		return got != "" && ok(got)
	})
	return got
}

// waitGroupUp waits until every agent runs the group: the holder has the
// floating IP configured and answers on it.
func (w *world) waitGroupUp() string {
	w.t.Helper()
	t0 := time.Now()
	h := w.waitAnswer(30*time.Second, func(string) bool { return true })
	w.t.Logf("floating ip answered by %s %s after the agents started", h, time.Since(t0).Round(time.Millisecond))
	w.waitMembers(20 * time.Second)
	return h
}

// waitMembers waits until every agent sees every member alive and
// healthy (its metrics): only then can a hand-over find a peer to take
// over (the health checks need their rise count after the start).
func (w *world) waitMembers(timeout time.Duration) {
	w.t.Helper()
	n := len(w.spec.servers)
	alive := fmt.Sprintf("hcagent_group_members_alive{group=\"web\"} %d\n", n)
	healthy := fmt.Sprintf("hcagent_group_members_healthy{group=\"web\"} %d\n", n)
	waitFor(w.t, timeout, 100*time.Millisecond, "every member sees the whole group alive and healthy", func() bool {
		for _, name := range w.spec.servers {
			m, err := w.c.Server(name).Get(w.ctx, "http://127.0.0.1:9183/metrics")
			if err != nil || !strings.Contains(m, alive) || !strings.Contains(m, healthy) {
				return false
			}
		}
		return true
	})
}

// assigns counts successful assign actions seen by the API simulator.
func (w *world) assigns() int {
	n := 0
	for _, r := range w.sim.RequestLog() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/actions/assign") && r.Status/100 == 2 {
			n++
		}
	}
	return n
}

// hasAddr reports whether the server has ip configured on some link.
func (w *world) hasAddr(server string, ip netip.Addr) bool {
	addrs, err := w.c.Server(server).NetlinkHandle().AddrList(nil, netlink.FAMILY_ALL)
	require.NoError(w.t, err)
	return slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(ip.AsSlice()) })
}

// others returns the servers other than name.
func (w *world) others(name string) []string {
	return slices.DeleteFunc(slices.Clone(w.spec.servers), func(s string) bool { return s == name })
}

// waitFor polls cond every interval until it holds, failing the test after
// timeout. It returns how long it took.
func waitFor(t *testing.T, timeout, interval time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	t0 := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-t.Context().Done():
			t.Fatalf("interrupted waiting for %s", what)
		case <-tick.C:
		}
	}
	return time.Since(t0)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
