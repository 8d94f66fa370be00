package floatingip

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// DefaultGossipPort is the default memberlist port of a group.
const DefaultGossipPort = 7946

// Failure detection timing. memberlist (SWIM with Lifeguard) declares a
// member dead in two steps: a probe that gets no direct or indirect ack
// within ProbeInterval marks it suspect, and the suspicion expires after
// SuspicionMult × max(1, log10(n)) × ProbeInterval (the minimum; groups of
// fewer than SuspicionMult members get no confirmations and always use the
// minimum; larger ones start at SuspicionMaxTimeoutMult × that and shrink as
// other members confirm).
//
// With ProbeInterval 180 ms, ProbeTimeout 90 ms and SuspicionMult 4, for
// groups of up to 9 members:
//
//   - a crashed member is probed within ~180 ms (every member probes one
//     peer per interval), is suspect 180 ms later and dead 4 × 180 ms =
//     720 ms after that: about 0.9–1.1 s from crash to dead;
//   - a member paused at t0 is suspect at the earliest at t0 + 180 ms (a
//     probe sent just before the pause) and would be dead at t0 + 900 ms.
//     When it wakes it reads the queued suspect messages and pings, refutes
//     with a higher incarnation and sends the refutation at once on a ping
//     to each peer (gossip_refute.go), so a pause of up to 800 ms is
//     refuted with ~100 ms to spare and nothing moves.
//
// The probes are most of an idle member's cost, so this is a trade-off
// between idle CPU and detection, measured with hc-bench (issue 14; a group
// of three, one HTTP health check, 1 s assign action, GOMAXPROCS 1 except
// where noted; CPU of one core, crash-to-dead p50, client outage p50).
// First round, with memberlist's NetTransport and the default timer slack:
//
//	ProbeInterval/SuspicionMult  CPU    wakeups/s  dead after  outage
//	100 ms / 8 (2 cores)         1.2 %  380        0.97 s      1.98 s
//	150 ms / 5                   0.85 % 225        0.98 s      2.01 s
//	180 ms / 4                   0.70 % 206        0.92 s      1.98 s
//	200 ms / 4 (2 cores)         0.68 % 196        1.16 s      2.17 s
//	300 ms / 2 (2 cores)         0.57 % 180        1.14 s      2.18 s
//
// (8 trials each; the full `make bench` run with 180 ms / 4 gave 0.63–0.68 %,
// 200 wakeups/s, dead after 1.02 s and an outage of 2.03 s.) A perf trace
// then showed that most wakeups were not the probes themselves but the Go
// runtime's sysmon thread polling every 20 µs through each burst of work,
// and most garbage was NetTransport's 64 KiB buffer per packet. With the
// group's own transport (gossip_transport.go), a 1 ms timer slack
// (cmd/hc-agent) and the refutation sent at once (gossip_refute.go), in
// one session (60 s footprint, holder/standby; 10 crash trials each):
//
//	ProbeInterval/SuspicionMult  CPU          wakeups/s  dead after  outage
//	150 ms / 5                   0.55/0.47 %  87/88      1.00 s      2.02 s
//	180 ms / 4                   0.42/0.50 %  77/75      0.94 s      1.95 s
//	300 ms / 3                   0.37/0.37 %  71/62      1.43 s      2.44 s
//
// The CPU figures have a 10 ms resolution over 60 s (±0.02 %), and
// 10-trial outages vary by ±0.05 s between runs (2.04 s and 1.95 s for the
// same build). 180 ms / 4 stays: it is the cheapest point that keeps the
// outage at about 2 s and an 800 ms pause harmless (0 of 10 bench trials
// moved, also with two busy loops loading both cores). No point reaches the
// 0.3 % the issue hoped for: a probe round is a ping, an ack and the
// peers' pings, each a wakeup of the process and an encrypted packet
// through the kernel, and detection in about a second needs several a
// second, while the suspicion timeout (SuspicionMult × ProbeInterval)
// must stay above ~700 ms for the pause.
//
// GossipInterval only paces broadcasts that found no probe or ack to ride
// on: every packet memberlist sends piggybacks pending broadcasts, and each
// member sends one ping per ProbeInterval and acks every ping it gets. It
// was 50 ms; each gossip tick wakes the process (about 8 context switches
// on two cores even when nothing is pending), which made it the largest
// part of an idle member's cost (issue 14: 340 wakeups/s at 50 ms, 220 at
// 200 ms, 216 at 500 ms in a settled group of three; with the timer slack
// 75–77 at 200 ms and 69–72 at 500 ms). 200 ms keeps a broadcast no slower
// than a probe round: the member that finds a crash first tells the others
// by broadcast, and the new holder may be one of them.
//
// TCPTimeout bounds the TCP fallback probe and push/pull; it is 1 s on a
// private network with sub-millisecond RTTs.
const (
	gossipProbeInterval   = 180 * time.Millisecond
	gossipProbeTimeout    = 90 * time.Millisecond
	gossipSuspicionMult   = 4
	gossipSuspicionMaxMul = 3
	gossipInterval        = 200 * time.Millisecond
	gossipRetransmitMult  = 4
	gossipTCPTimeout      = time.Second
	gossipPushPull        = 15 * time.Second
	gossipRejoinInterval  = 5 * time.Second
	gossipMetaVersion     = 1
	// gossipUpdateWait bounds the wait for a metadata broadcast to go out
	// (RetransmitMult transmissions: two gossip rounds to two peers, fewer
	// with piggybacking); a broadcast that did not is sent again after
	// gossipUpdateRetry. Leave waits for at most one such wait.
	gossipUpdateWait  = 3 * gossipInterval
	gossipUpdateRetry = time.Second
)

// maxMetaHostname bounds the hostname in the node metadata.
const maxMetaHostname = 200

// GossipConfig configures the memberlist of one group.
type GossipConfig struct {
	// Group is the group name; it labels every packet so that groups never
	// mix.
	Group string
	// Self is this server's ID, used as the node name so ties are well
	// defined.
	Self int64
	// Bind is the private address to listen on; Port defaults to 7946.
	Bind string
	Port int
	// Peers are the other members' private addresses (host or host:port).
	Peers []string
	// Keys are the gossip encryption keys (16, 24 or 32 bytes each, see
	// LoadKeyFile): the first encrypts what this member sends, every one
	// decrypts what it receives, so that a key can be rotated without a
	// partition (see SetKeys). A group without a key refuses to start
	// unless Insecure.
	Keys     [][]byte
	Insecure bool
	// Hostname is this server's name, advertised so that status shows
	// members by name (the node name is the server ID).
	Hostname string
	// DecryptFailed, if set, is called for every message that no installed
	// key decrypts (a peer with another key); it must not block.
	DecryptFailed func()
	// Transport replaces the network transport (tests); nil means
	// gossipTransport on Bind:Port (memberlist's NetTransport for a
	// wildcard Bind).
	Transport memberlist.Transport
	Log       *slog.Logger
}

// ParseKey decodes a gossip key: raw bytes of an AES key size, or their
// base64 encoding.
func ParseKey(b []byte) ([]byte, error) {
	validLen := func(n int) bool { return n == 16 || n == 24 || n == 32 }
	if validLen(len(b)) && !isBase64Key(b) {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if d, err := base64.StdEncoding.DecodeString(s); err == nil && validLen(len(d)) {
		return d, nil
	}
	if validLen(len(b)) {
		return b, nil
	}
	return nil, errors.New("key is not 16, 24 or 32 bytes, raw or base64")
}

func isBase64Key(b []byte) bool {
	d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	return err == nil && (len(d) == 16 || len(d) == 24 || len(d) == 32)
}

// gossipMeta is the node metadata: small (well under memberlist's 512
// bytes) and versioned.
type gossipMeta struct {
	V int  `json:"v"`
	P int  `json:"p"`
	R bool `json:"r,omitempty"` // ready
	H bool `json:"h,omitempty"` // healthy
	C bool `json:"c,omitempty"` // candidate
	O bool `json:"o,omitempty"` // holding
	B bool `json:"b,omitempty"` // backing off
	// N is the member's hostname (at most 63 bytes, so the metadata stays
	// far below memberlist's 512).
	N string `json:"n,omitempty"`
	// L marks a member that is leaving. memberlist's NotifyLeave does not
	// tell a leave from a death (the node's State field is stale there),
	// so a leaving member says so in its metadata first.
	L bool `json:"l,omitempty"`
	// D is the digest of the last read of this member's floating IP
	// manager while it holds the group (ReadDigest.String), so that the
	// standbys can skip their own periodic reads (issue 14). Older members
	// ignore the key and advertise none, which makes the standbys read
	// periodically: the meta stays version 1.
	D string `json:"d,omitempty"`
}

// Gossip is a group's membership over memberlist. It implements Membership.
type Gossip struct {
	cfg     GossipConfig
	log     *slog.Logger
	ml      *memberlist.Memberlist
	changes chan struct{}
	stop    chan struct{}
	rejoins sync.WaitGroup
	// update (1-buffered) wakes the publisher; published is closed when
	// the publisher has exited.
	update    chan struct{}
	published chan struct{}

	// pinger is memberlist once it runs (set under mu); refuting,
	// refutePending and refutes belong to refuted.
	pinger        pinger
	refuting      atomic.Bool
	refutePending atomic.Bool
	refutes       sync.WaitGroup

	// keyring is memberlist's, nil for an insecure group; SetKeys changes
	// it in place (it has its own lock).
	keyring *memberlist.Keyring

	mu      sync.Mutex
	meta    []byte // what we advertise
	sent    []byte // what the last successful broadcast carried
	members map[string]Member
	left    map[string]bool
	// decryptPeers are the addresses whose messages did not decrypt, in
	// order of the first failure; decryptLast is the last failure.
	decryptPeers []string
	decryptLast  time.Time
	close        sync.Once
}

var _ Membership = (*Gossip)(nil)

// NewGossip starts the memberlist of a group and joins the peers it can
// reach; it keeps trying to join the others in the background until Leave.
func NewGossip(cfg GossipConfig) (*Gossip, error) {
	if len(cfg.Keys) == 0 && !cfg.Insecure {
		return nil, fmt.Errorf("start gossip of group %s: no key file (set insecure to run unencrypted)", cfg.Group)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultGossipPort
	}
	// memberlist refuses node metadata over 512 bytes: a long FQDN is cut.
	if len(cfg.Hostname) > maxMetaHostname {
		cfg.Hostname = cfg.Hostname[:maxMetaHostname]
	}
	logger := cfg.Log
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := &Gossip{
		cfg: cfg, log: logger.With("group", cfg.Group), changes: make(chan struct{}, 1),
		stop: make(chan struct{}), left: map[string]bool{}, members: map[string]Member{},
		update: make(chan struct{}, 1), published: make(chan struct{}),
	}
	g.meta, _ = json.Marshal(gossipMeta{V: gossipMetaVersion, N: cfg.Hostname})
	g.sent = g.meta // memberlist.Create advertises it

	mc := memberlist.DefaultLANConfig()
	mc.Name = strconv.FormatInt(cfg.Self, 10)
	mc.BindAddr = cfg.Bind
	mc.BindPort = cfg.Port
	mc.AdvertisePort = cfg.Port
	mc.Label = "hc-agent/" + cfg.Group
	mc.ProbeInterval = gossipProbeInterval
	mc.ProbeTimeout = gossipProbeTimeout
	mc.SuspicionMult = gossipSuspicionMult
	mc.SuspicionMaxTimeoutMult = gossipSuspicionMaxMul
	mc.GossipInterval = gossipInterval
	mc.RetransmitMult = gossipRetransmitMult
	mc.TCPTimeout = gossipTCPTimeout
	mc.PushPullInterval = gossipPushPull
	mc.DeadNodeReclaimTime = 5 * time.Second
	// Our packets are a few hundred bytes; LZW would allocate its tables
	// for every message (several per second) and save next to nothing.
	// Compressed packets from other versions are still read.
	mc.EnableCompression = false
	if len(cfg.Keys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.Keys, cfg.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("start gossip of group %s: keyring: %w", cfg.Group, err)
		}
		g.keyring = kr
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Logger = log.New((*memberlistLog)(g), "", 0)
	mc.Transport = cfg.Transport
	var own *gossipTransport
	// A wildcard bind (bind: 0.0.0.0) keeps memberlist's NetTransport, which
	// guesses the private address to advertise.
	if ip, perr := netip.ParseAddr(cfg.Bind); mc.Transport == nil && perr == nil && !ip.IsUnspecified() {
		tr, err := newGossipTransport(cfg.Bind, cfg.Port, mc.Logger)
		if err != nil {
			return nil, fmt.Errorf("start gossip of group %s: %w", cfg.Group, err)
		}
		own, mc.Transport = tr, tr
	}
	mc.Delegate = (*gossipDelegate)(g)
	mc.Events = (*gossipEvents)(g)
	ml, err := memberlist.Create(mc)
	if err != nil {
		// memberlist shuts a transport down only once it has started.
		if own != nil {
			_ = own.Shutdown()
		}
		return nil, fmt.Errorf("start gossip of group %s on %s:%d: %w", cfg.Group, cfg.Bind, cfg.Port, err)
	}
	g.ml = ml
	g.mu.Lock()
	g.pinger = ml
	g.mu.Unlock()
	g.rejoins.Add(1)
	go g.rejoin()    // exits on Leave or Shutdown, after a join in progress
	go g.publisher() // exits on Leave or Shutdown
	return g, nil
}

func (g *Gossip) peerAddrs() []string {
	g.mu.Lock()
	peers := g.cfg.Peers
	g.mu.Unlock()
	var out []string
	for _, p := range peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			p = net.JoinHostPort(p, strconv.Itoa(g.cfg.Port))
		}
		out = append(out, p)
	}
	return out
}

// SetPeers replaces the configured peers (reload): the background join
// tries the new ones from its next round on. Members that are no longer
// configured are not expelled; they drop out when they stop.
func (g *Gossip) SetPeers(peers []string) {
	g.mu.Lock()
	g.cfg.Peers = slices.Clone(peers)
	g.mu.Unlock()
}

// rejoin joins configured peers that are not members, now and every few
// seconds, so that a group whose members start in any order converges.
func (g *Gossip) rejoin() {
	defer g.rejoins.Done()
	t := time.NewTicker(gossipRejoinInterval)
	defer t.Stop()
	for {
		if peers := g.peerAddrs(); len(peers) > 0 && g.ml.NumMembers() < len(peers)+1 {
			if n, err := g.ml.Join(peers); err != nil && n == 0 {
				g.log.Debug("join peers", "err", err)
			}
		}
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
	}
}

// Members returns the alive members and those that left gracefully.
//
// It answers from a copy kept by the event callbacks: memberlist's own
// Members returns pointers that its goroutines keep mutating.
func (g *Gossip) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Member, 0, len(g.members)+len(g.left))
	for _, m := range g.members {
		out = append(out, m)
	}
	for name := range g.left {
		id, err := strconv.ParseInt(name, 10, 64)
		if err == nil {
			out = append(out, Member{ID: id, Name: name, Left: true})
		}
	}
	return out
}

// memberOf converts a memberlist node; memberlist calls the event delegate
// with its node lock held, so reading n there is safe.
func memberOf(n *memberlist.Node) (Member, bool) {
	id, err := strconv.ParseInt(n.Name, 10, 64)
	if err != nil {
		return Member{}, false
	}
	m := Member{ID: id, Name: n.Name, Addr: n.Address(), Starting: true}
	var meta gossipMeta
	if json.Unmarshal(n.Meta, &meta) == nil && meta.V >= 1 {
		m.Priority, m.Healthy, m.Candidate, m.Holding, m.Starting = meta.P, meta.H, meta.C, meta.O, !meta.R
		m.BackingOff = meta.B
		if meta.N != "" {
			m.Name = meta.N
		}
		if meta.L {
			m.Candidate, m.Holding = false, false
		}
		if d, err := ParseReadDigest(meta.D); err == nil {
			m.ReadDigest = d
		}
	}
	return m, true
}

// SetLocal publishes the local state in the node metadata. It does not
// wait for the broadcast: a group's loop must not stall on gossip while a
// peer fails. A background publisher sends the newest state, one update at
// a time, and sends it again until a broadcast went out.
func (g *Gossip) SetLocal(s LocalState) error {
	b, err := json.Marshal(gossipMeta{V: gossipMetaVersion, P: s.Priority, R: s.Ready, H: s.Healthy, C: s.Candidate, O: s.Holding, B: s.BackingOff, N: g.cfg.Hostname,
		D: s.ReadDigest.String()})
	if err != nil {
		return fmt.Errorf("encode gossip meta: %w", err)
	}
	g.mu.Lock()
	g.meta = b
	g.mu.Unlock()
	select {
	case g.update <- struct{}{}:
	default:
	}
	return nil
}

// publisher broadcasts the metadata whenever it changed. Updates are
// serialised: memberlist's UpdateNode reads the metadata before it takes
// the next incarnation, so two concurrent calls could let an older state
// win. A broadcast that did not go out in time (UpdateNode returns an error,
// for example when a refutation raced it) is repeated after
// gossipUpdateRetry: nothing else would send it again. It exits on Leave or
// Shutdown.
func (g *Gossip) publisher() {
	defer close(g.published)
	retry := time.NewTimer(gossipUpdateRetry)
	retry.Stop()
	defer retry.Stop()
	failing := false
	for {
		select {
		case <-g.stop:
			return
		case <-g.update:
		case <-retry.C:
		}
		g.mu.Lock()
		meta, sent := g.meta, g.sent
		g.mu.Unlock()
		if string(meta) == string(sent) {
			continue
		}
		if err := g.ml.UpdateNode(gossipUpdateWait); err != nil {
			if !failing {
				g.log.Warn("broadcast local state", "err", err)
			}
			failing = true
			retry.Reset(gossipUpdateRetry)
			continue
		}
		failing = false
		g.mu.Lock()
		g.sent = meta
		g.mu.Unlock()
	}
}

// stopWorkers stops the publisher, the refutation pings and the rejoin
// loop and waits for the publisher (at most one gossipUpdateWait) and the
// pings (ProbeTimeout), so that no older update races
// what follows. The rejoin loop may still finish a join attempt; see
// waitRejoin.
func (g *Gossip) stopWorkers() {
	close(g.stop)
	<-g.published
	g.mu.Lock()
	g.pinger = nil // no more refutation pings
	g.mu.Unlock()
	g.refutes.Wait() // its pings end within ProbeTimeout
}

// waitRejoin waits for the rejoin loop until ctx is done: a join attempt in
// progress takes up to TCPTimeout per unreachable peer, and a shutdown
// (with no peer left to take over) should not wait for that.
func (g *Gossip) waitRejoin(ctx context.Context) {
	done := make(chan struct{})
	go func() { // exits when the rejoin loop has
		g.rejoins.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Changes is signalled when a member joins, leaves, dies or changes meta.
func (g *Gossip) Changes() <-chan struct{} { return g.changes }

// Leave leaves the group gracefully and shuts memberlist down. It is safe to
// call more than once.
func (g *Gossip) Leave(ctx context.Context) error {
	var err error
	g.close.Do(func() {
		g.stopWorkers()
		timeout := time.Second
		if d, ok := ctx.Deadline(); ok {
			timeout = time.Until(d)
		}
		g.mu.Lock()
		var meta gossipMeta
		_ = json.Unmarshal(g.meta, &meta)
		meta.L, meta.C, meta.O = true, false, false
		g.meta, _ = json.Marshal(meta)
		g.mu.Unlock()
		if uerr := g.ml.UpdateNode(timeout / 2); uerr != nil {
			g.log.Debug("announce leave", "err", uerr)
		}
		if lerr := g.ml.Leave(timeout); lerr != nil {
			err = fmt.Errorf("leave group %s: %w", g.cfg.Group, lerr)
		}
		if serr := g.ml.Shutdown(); serr != nil {
			err = errors.Join(err, fmt.Errorf("shut down gossip of group %s: %w", g.cfg.Group, serr))
		}
		g.waitRejoin(ctx)
	})
	return err
}

// Shutdown stops memberlist without leaving, like a crash (tests).
func (g *Gossip) Shutdown() error {
	var err error
	g.close.Do(func() {
		g.stopWorkers()
		err = g.ml.Shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), gossipTCPTimeout)
		defer cancel()
		g.waitRejoin(ctx)
	})
	return err
}

func (g *Gossip) notify() {
	select {
	case g.changes <- struct{}{}:
	default:
	}
}

type gossipDelegate Gossip

func (d *gossipDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.meta) > limit {
		return nil
	}
	return append([]byte(nil), d.meta...)
}
func (d *gossipDelegate) NotifyMsg([]byte)                           {}
func (d *gossipDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *gossipDelegate) LocalState(join bool) []byte                { return nil }
func (d *gossipDelegate) MergeRemoteState(buf []byte, join bool)     {}

type gossipEvents Gossip

func (e *gossipEvents) NotifyJoin(n *memberlist.Node) {
	m, ok := memberOf(n)
	e.mu.Lock()
	delete(e.left, n.Name)
	if ok {
		e.members[n.Name] = m
	}
	e.mu.Unlock()
	e.log.Info("member joined", "member", n.Name, "addr", n.Address())
	(*Gossip)(e).notify()
}

func (e *gossipEvents) NotifyLeave(n *memberlist.Node) {
	var meta gossipMeta
	left := json.Unmarshal(n.Meta, &meta) == nil && meta.L
	e.mu.Lock()
	if left {
		e.left[n.Name] = true
	}
	delete(e.members, n.Name)
	e.mu.Unlock()
	e.log.Info("member gone", "member", n.Name, "left", left)
	(*Gossip)(e).notify()
}

func (e *gossipEvents) NotifyUpdate(n *memberlist.Node) {
	if m, ok := memberOf(n); ok {
		e.mu.Lock()
		e.members[n.Name] = m
		e.mu.Unlock()
	}
	(*Gossip)(e).notify()
}
