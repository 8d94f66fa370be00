package scenario

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/internal/bench/keepalived"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// Env is what every scenario needs from the harness.
type Env struct {
	AgentBin string // hc-agent binary to run in the servers
	WorkDir  string // scratch directory for configs, state and logs
	Log      *slog.Logger
	Trials   int
	Quick    bool
	// ProfileDir, when set, makes the footprint scenario's agents write a
	// CPU profile each (SERVER.pprof) through HC_AGENT_CPUPROFILE.
	ProfileDir string
}

// Names the scenarios give to cloud objects.
const (
	fipName   = "vip"
	groupName = "bench"
	namePort  = 80
)

// clusterSpec describes the simulated cloud of one scenario.
type clusterSpec struct {
	servers  int
	networks int
	// dhcp makes the simulator configure the private NICs, as an image's
	// DHCP client would: the keepalived baseline needs them up.
	dhcp bool
	// holder is the index of the server the floating IP starts on, -1 for
	// no floating IP.
	holder      int
	actionDelay time.Duration
	// names starts the name service (the probe's target) on every server.
	names bool
	// grouped is how many servers (the first ones) form the failover
	// group; 0 means all. The others run without groups.
	grouped int
}

// cluster is a simulated cloud with its API simulator, servers, one
// floating IP and the processes the scenario runs.
type cluster struct {
	env     Env
	dir     string
	cloud   *simcloud.Cloud
	sim     *cloudapitest.Sim
	nets    []*simcloud.Network
	servers []*simcloud.Server
	fip     *simcloud.FloatingIP
	keyFile string

	names  map[string]*simcloud.Proc
	agents map[string]*simcloud.Proc
	// agentsMu guards agents while startAgent runs in parallel (the boot
	// storm); everything else uses agents from one goroutine.
	agentsMu sync.Mutex
	kas      map[string]*keepalived.Process
	// kaState is the last state each keepalived process logged, kept up
	// to date by watchKA.
	kaMu    sync.Mutex
	kaState map[*keepalived.Process]string
	// agentCfg adjusts the configuration of every agent the cluster starts.
	agentCfg func(*config.Config)
	// profileDir, when set, gets a CPU profile of every agent it starts.
	profileDir string
	// grouped is clusterSpec.grouped, resolved (never 0).
	grouped int
	// phases collects, per crash trial of hc-agent, the new holder's move
	// timeline: each phase's duration, plus "detection" (crash to failure
	// seen).
	phases []map[string]time.Duration
	// privateIPs are the private VIPs of the failover group
	// (privatevip_linux.go); with them a cluster without a floating IP
	// has a group too.
	privateIPs []config.PrivateIP
}

// token returns the API token of server i. Each server has its own token
// so the simulator counts requests per server; they are made-up test
// values, not secrets.
func token(i int) string { return fmt.Sprintf("bench-token-%02d", i) }

func newCluster(ctx context.Context, env Env, spec clusterSpec) (_ *cluster, err error) {
	dir, err := os.MkdirTemp(env.WorkDir, "cluster-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	tokens := make([]string, spec.servers)
	for i := range tokens {
		tokens[i] = token(i)
	}
	sim := cloudapitest.New(cloudapitest.WithTokens(tokens...), cloudapitest.WithActionDelay(spec.actionDelay))
	cloud, err := simcloud.New(ctx, simcloud.WithLogger(env.Log))
	if err != nil {
		sim.Close()
		return nil, fmt.Errorf("create simulated cloud: %w", err)
	}
	c := &cluster{
		env: env, dir: dir, cloud: cloud, sim: sim,
		names:  map[string]*simcloud.Proc{},
		agents: map[string]*simcloud.Proc{},
		kas:    map[string]*keepalived.Process{},

		kaState: map[*keepalived.Process]string{},
		grouped: spec.grouped,
	}
	if c.grouped <= 0 || c.grouped > spec.servers {
		c.grouped = spec.servers
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	var netNames []string
	for i := range spec.networks {
		n, err := cloud.AddNetwork(simcloud.NetworkSpec{
			Name:    fmt.Sprintf("net%d", i+1),
			Network: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 0}), 16),
			Subnet:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i + 1), 0, 0}), 24),
		})
		if err != nil {
			return nil, fmt.Errorf("add network %d: %w", i+1, err)
		}
		c.nets = append(c.nets, n)
		netNames = append(netNames, n.Name())
	}
	for i := range spec.servers {
		s, err := cloud.AddServer(simcloud.ServerSpec{
			Name: fmt.Sprintf("srv%d", i+1), Networks: netNames, ConfigurePrivate: spec.dhcp,
		})
		if err != nil {
			return nil, fmt.Errorf("add server %d: %w", i+1, err)
		}
		c.servers = append(c.servers, s)
	}
	if spec.holder >= 0 {
		f, err := cloud.AddFloatingIP(simcloud.FloatingIPSpec{Name: fipName})
		if err != nil {
			return nil, fmt.Errorf("add floating ip: %w", err)
		}
		c.fip = f
		holder := c.servers[spec.holder]
		if err := cloud.RouteFloatingIP(f.Prefix(), holder.Name()); err != nil {
			return nil, fmt.Errorf("route floating ip to %s: %w", holder.Name(), err)
		}
	}
	// The simulator mirrors the servers and the floating IP with its holder,
	// and routes the floating IP when an assign action succeeds.
	if err := cloud.ConnectAPI(sim); err != nil {
		return nil, fmt.Errorf("connect API simulator: %w", err)
	}
	if spec.names {
		for _, s := range c.servers {
			if err := c.startNameService(ctx, s); err != nil {
				return nil, err
			}
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c.keyFile = filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(c.keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write gossip key: %w", err)
	}
	return c, nil
}

func (c *cluster) startNameService(ctx context.Context, s *simcloud.Server) error {
	p, err := s.StartNameService(ctx, namePort)
	if err != nil {
		return fmt.Errorf("start name service on %s: %w", s.Name(), err)
	}
	c.names[s.Name()] = p
	return nil
}

// close ends every process the cluster started (by PID, waiting for each)
// and removes the simulated cloud.
func (c *cluster) close() {
	for _, p := range c.kas {
		_ = p.Kill()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, p := range c.agents {
		_ = p.Stop(ctx, syscall.SIGTERM)
	}
	for _, p := range c.names {
		_ = p.Kill()
		_ = p.Wait()
	}
	if err := c.cloud.Close(); err != nil {
		c.env.Log.Warn("close simulated cloud", "err", err)
	}
	c.sim.Close()
	if left := c.cloud.Leftovers(); len(left) > 0 {
		c.env.Log.Warn("simulated cloud left things behind", "leftovers", left)
	}
}

func (c *cluster) index(s *simcloud.Server) int {
	for i, x := range c.servers {
		if x == s {
			return i
		}
	}
	return -1
}

// privateIP returns server s's address in the first private network.
func privateIP(s *simcloud.Server) (netip.Addr, error) {
	_, nets := s.Metadata()
	if len(nets) == 0 {
		return netip.Addr{}, fmt.Errorf("server %s has no private network", s.Name())
	}
	return nets[0].IP, nil
}

// agentConfig returns the configuration of the agent on server s: the
// defaults, its own state directories, and a failover group of all
// servers over the first private network when the cluster has a floating
// IP and more than one server.
func (c *cluster) agentConfig(s *simcloud.Server) (config.Config, error) {
	cfg := config.Default()
	base := filepath.Join(c.dir, s.Name())
	cfg.StateDir = filepath.Join(base, "state")
	cfg.RuntimeDir = filepath.Join(base, "run")
	cfg.Log.Level = "info"
	if c.inGroup(s) {
		g := config.DefaultGroup()
		g.Name = groupName
		if c.fip != nil {
			g.FloatingIPs = []string{fipName}
		}
		g.PrivateIPs = c.privateIPs
		// Priorities fall with the index, like the keepalived baseline's.
		g.Priority = 150 - 50*c.index(s)
		for _, p := range c.servers[:c.grouped] {
			if p == s {
				continue
			}
			ip, err := privateIP(p)
			if err != nil {
				return config.Config{}, err
			}
			g.Peers = append(g.Peers, ip.String())
		}
		g.KeyFile = c.keyFile
		// The benchmark moves the address every few seconds on purpose;
		// the default of 3 moves a minute would throttle the trials.
		g.MaxMovesPerMinute = 60
		cfg.Groups = []config.Group{g}
	}
	if c.agentCfg != nil {
		c.agentCfg(&cfg)
	}
	return cfg, nil
}

// startAgent writes the configuration of server s and starts hc-agent in
// its namespace. The agent's log goes to a file in the cluster directory.
func (c *cluster) startAgent(ctx context.Context, s *simcloud.Server) (*simcloud.Proc, error) {
	cfg, err := c.agentConfig(s)
	if err != nil {
		return nil, err
	}
	text, err := cfg.YAML()
	if err != nil {
		return nil, fmt.Errorf("render agent config for %s: %w", s.Name(), err)
	}
	base := filepath.Join(c.dir, s.Name())
	for _, d := range []string{cfg.StateDir, cfg.RuntimeDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create agent directory %s: %w", d, err)
		}
	}
	path := filepath.Join(base, "config.yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		return nil, fmt.Errorf("write agent config %s: %w", path, err)
	}
	logf, err := os.OpenFile(filepath.Join(base, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open agent log for %s: %w", s.Name(), err)
	}
	// The file stays open for the process's lifetime; the OS closes it
	// when the harness exits. Runs start few agents, so this is bounded.
	env := []string{
		"HCLOUD_TOKEN=" + token(c.index(s)),
		"HCLOUD_ENDPOINT=" + c.cloud.APIEndpoint(),
		"NOTIFY_SOCKET=", "WATCHDOG_USEC=",
	}
	if c.profileDir != "" {
		env = append(env, "HC_AGENT_CPUPROFILE="+filepath.Join(c.profileDir, s.Name()+".pprof"))
	}
	p, err := s.StartWithOutput(context.WithoutCancel(ctx), "hc-agent", []string{c.env.AgentBin, "run", "--config", path}, env, logf)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start hc-agent on %s: %w", s.Name(), err)
	}
	c.agentsMu.Lock()
	c.agents[s.Name()] = p
	c.agentsMu.Unlock()
	return p, nil
}

// stopAgent ends the agent of s with SIGTERM and waits for it.
func (c *cluster) stopAgent(ctx context.Context, s *simcloud.Server) error {
	p := c.agents[s.Name()]
	if p == nil {
		return nil
	}
	delete(c.agents, s.Name())
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := p.Stop(ctx, syscall.SIGTERM)
	var ee interface{ ExitCode() int }
	if err != nil && errors.As(err, &ee) {
		// Exit codes are the agent's business; the scenario only needs it gone.
		return nil
	}
	return err
}

// agentStatus reads the /status document of the agent on s from inside
// its namespace.
func (c *cluster) agentStatus(ctx context.Context, s *simcloud.Server) (agentStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	body, err := s.Get(ctx, "http://127.0.0.1:9183/status")
	if err != nil {
		return agentStatus{}, fmt.Errorf("read status of %s: %w", s.Name(), err)
	}
	var st agentStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return agentStatus{}, fmt.Errorf("decode status of %s: %w", s.Name(), err)
	}
	return st, nil
}

// agentStatus is the part of the agent's /status document the scenarios
// read.
type agentStatus struct {
	Ready bool `json:"ready"`
	// Components gives the floating IP manager's read mode (reader or
	// follower).
	Components map[string]struct {
		Mode string `json:"mode"`
	} `json:"components"`
	Groups []struct {
		Role    string `json:"role"`
		Members []struct {
			ID    int64 `json:"id"`
			Alive bool  `json:"alive"`
		} `json:"members"`
		LastMove *struct {
			At       time.Time `json:"at"`
			Result   string    `json:"result"`
			Timeline struct {
				Failure string `json:"failure"`
				Phases  []struct {
					Phase   string    `json:"phase"`
					At      time.Time `json:"at"`
					Seconds float64   `json:"seconds"`
				} `json:"phases"`
			} `json:"timeline"`
		} `json:"last_move"`
	} `json:"groups"`
}

// settled reports whether the agent is ready, runs groups groups, and in
// each sees all n members alive and has a role other than candidate.
func (st agentStatus) settled(n, groups int) bool {
	if !st.Ready || len(st.Groups) != groups {
		return false
	}
	for _, g := range st.Groups {
		alive := 0
		for _, m := range g.Members {
			if m.Alive {
				alive++
			}
		}
		if alive != n || (g.Role != "holder" && g.Role != "standby") {
			return false
		}
	}
	return true
}

// waitAgentsSettled waits until every running agent is settled.
func (c *cluster) waitAgentsSettled(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := c.grouped
	for _, s := range c.servers {
		groups := 0
		if c.inGroup(s) {
			groups = 1
		}
		err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
			st, err := c.agentStatus(ctx, s)
			return err == nil && st.settled(n, groups), nil
		})
		if err != nil {
			return fmt.Errorf("wait for agent on %s to settle: %w%s", s.Name(), err, c.agentLogTail(s))
		}
	}
	return nil
}

// agentLogTail returns the end of the agent's output on s for error
// messages.
func (c *cluster) agentLogTail(s *simcloud.Server) string {
	b, err := os.ReadFile(filepath.Join(c.dir, s.Name(), "agent.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "; agent log: " + strings.Join(lines, " | ")
}

// poll calls cond every interval until it returns true, an error, or ctx
// ends. The harness (not a test) waits on real processes this way.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// privateNIC returns the name of s's NIC with mac.
func privateNIC(s *simcloud.Server, mac net.HardwareAddr) (string, error) {
	links, err := s.NetlinkHandle().LinkList()
	if err != nil {
		return "", fmt.Errorf("list links of %s: %w", s.Name(), err)
	}
	for _, l := range links {
		if l.Attrs().HardwareAddr.String() == mac.String() {
			return l.Attrs().Name, nil
		}
	}
	return "", fmt.Errorf("find NIC %s on %s: not found", mac, s.Name())
}

// watchKA records every state p logs until p exits, then forgets it. It
// runs from start to exit of each keepalived process, so the state is
// never stale.
func (c *cluster) watchKA(p *keepalived.Process) {
	for ev := range p.Transitions() {
		c.kaMu.Lock()
		c.kaState[p] = ev.State
		c.kaMu.Unlock()
	}
	c.kaMu.Lock()
	delete(c.kaState, p)
	c.kaMu.Unlock()
}

// kaStateOf returns the last state p logged ("" before the first).
func (c *cluster) kaStateOf(p *keepalived.Process) string {
	c.kaMu.Lock()
	defer c.kaMu.Unlock()
	return c.kaState[p]
}

// inGroup reports whether the agent on s runs the failover group: the
// cluster has a floating IP or private VIPs and s is one of the first
// grouped servers (more than one).
func (c *cluster) inGroup(s *simcloud.Server) bool {
	i := c.index(s)
	return (c.fip != nil || len(c.privateIPs) > 0) && c.grouped > 1 && i >= 0 && i < c.grouped
}
