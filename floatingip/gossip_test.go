package floatingip

import (
	"context"
	"encoding/base64"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ctlTransport wraps the group's network transport so a test can freeze a
// node's network I/O (a paused process: packets queue, writes block, then
// everything is delivered late) or cut it off from given peers.
type ctlTransport struct {
	// inner is not embedded: its NodeAwareTransport methods would bypass
	// the wrappers below.
	inner   *gossipTransport
	packets chan *memberlist.Packet
	streams chan net.Conn

	mu      sync.Mutex
	resume  chan struct{} // non-nil while paused
	blocked map[string]bool
	done    chan struct{}
}

func newCtlTransport(t testing.TB) (*ctlTransport, int) {
	nt, err := newGossipTransport("127.0.0.1", 0, log.New(discardWriter{}, "", 0))
	require.NoError(t, err)
	c := &ctlTransport{inner: nt, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn),
		blocked: map[string]bool{}, done: make(chan struct{})}
	go c.pumpPackets() // exits on Shutdown
	go c.pumpStreams() // exits on Shutdown
	return c, nt.port()
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func (c *ctlTransport) wait() bool {
	c.mu.Lock()
	r := c.resume
	c.mu.Unlock()
	if r == nil {
		return true
	}
	select {
	case <-r:
		return true
	case <-c.done:
		return false
	}
}

func (c *ctlTransport) pumpPackets() {
	for {
		select {
		case p := <-c.inner.PacketCh():
			if !c.wait() {
				return
			}
			c.mu.Lock()
			drop := c.blocked[p.From.String()]
			c.mu.Unlock()
			if drop {
				continue
			}
			p.Timestamp = time.Now() // a paused process reads it late
			select {
			case c.packets <- p:
			case <-c.done:
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *ctlTransport) pumpStreams() {
	for {
		select {
		case s := <-c.inner.StreamCh():
			if !c.wait() {
				s.Close()
				return
			}
			select {
			case c.streams <- s:
			case <-c.done:
				s.Close()
				return
			}
		case <-c.done:
			return
		}
	}
}

func (c *ctlTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return c.inner.FinalAdvertiseAddr(ip, port)
}

func (c *ctlTransport) PacketCh() <-chan *memberlist.Packet { return c.packets }
func (c *ctlTransport) StreamCh() <-chan net.Conn           { return c.streams }

func (c *ctlTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if !c.wait() {
		return time.Now(), nil
	}
	c.mu.Lock()
	drop := c.blocked[addr]
	c.mu.Unlock()
	if drop {
		return time.Now(), nil
	}
	return c.inner.WriteTo(b, addr)
}

func (c *ctlTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if !c.wait() {
		return nil, net.ErrClosed
	}
	c.mu.Lock()
	drop := c.blocked[addr]
	c.mu.Unlock()
	if drop {
		return nil, &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}
	}
	return c.inner.DialTimeout(addr, timeout)
}

func (c *ctlTransport) Shutdown() error {
	c.mu.Lock()
	select {
	case <-c.done:
	default:
		close(c.done)
	}
	c.mu.Unlock()
	// The inner transport drops what its listeners hold at shutdown.
	return c.inner.Shutdown()
}

func (c *ctlTransport) pause() {
	c.mu.Lock()
	c.resume = make(chan struct{})
	c.mu.Unlock()
}

func (c *ctlTransport) unpause() {
	c.mu.Lock()
	close(c.resume)
	c.resume = nil
	c.mu.Unlock()
}

func (c *ctlTransport) block(addr string, on bool) {
	c.mu.Lock()
	c.blocked[addr] = on
	c.mu.Unlock()
}

type gnode struct {
	id   int64
	addr string
	tr   *ctlTransport
	g    *Gossip
}

// startGossip starts n members on loopback, joined to the first, and
// waits until all see all.
func startGossip(t *testing.T, n int) []*gnode {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	var nodes []*gnode
	for i := range n {
		tr, port := newCtlTransport(t)
		nd := &gnode{id: int64(i + 1), addr: "127.0.0.1:" + strconv.Itoa(port), tr: tr}
		var peers []string
		if i > 0 {
			peers = []string{nodes[0].addr}
		}
		g, err := NewGossip(GossipConfig{Group: "test", Self: nd.id, Bind: "127.0.0.1", Port: port, Peers: peers, Keys: [][]byte{key}, Transport: tr, Log: testLogger(t)})
		require.NoError(t, err)
		nd.g = g
		t.Cleanup(func() { _ = g.Shutdown() })
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		require.NoError(t, nd.g.SetLocal(LocalState{Ready: true, Priority: 100, Healthy: true, Candidate: true}))
	}
	waitFor(t, 10*time.Second, nodes[0].g, func(ms []Member) bool { return countAlive(ms) == n })
	return nodes
}

func countAlive(ms []Member) int {
	k := 0
	for _, m := range ms {
		if !m.Left {
			k++
		}
	}
	return k
}

func hasMember(ms []Member, id int64) bool {
	for _, m := range ms {
		if m.ID == id && !m.Left {
			return true
		}
	}
	return false
}

// waitFor waits on g's change events until cond holds or the deadline.
func waitFor(t *testing.T, d time.Duration, g *Gossip, cond func([]Member) bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(d)
	for !cond(g.Members()) {
		select {
		case <-g.Changes():
		case <-deadline:
			t.Fatalf("condition not met within %v: members %+v", d, g.Members())
		}
	}
	return time.Since(start)
}

func TestGossipCrashDetectedInAboutASecond(t *testing.T) {
	nodes := startGossip(t, 3)
	start := time.Now()
	require.NoError(t, nodes[2].g.Shutdown()) // no leave: a crash
	waitFor(t, 15*time.Second, nodes[0].g, func(ms []Member) bool { return !hasMember(ms, 3) })
	took := time.Since(start)
	t.Logf("dead after %v", took)
	assert.GreaterOrEqual(t, took, 800*time.Millisecond, "not before the suspicion timeout")
	if !raceEnabled {
		assert.LessOrEqual(t, took, 2*time.Second, "about a second (1.0–1.4 s unloaded)")
	}
	assert.False(t, hasMember(nodes[0].g.Members(), 3))
	for _, m := range nodes[0].g.Members() {
		assert.False(t, m.Left, "a crash is not a leave")
	}
}

func TestGossipPauseIsRefuted(t *testing.T) {
	if raceEnabled {
		t.Skip("wall-clock timing test: the race detector slows memberlist too much")
	}
	for _, pause := range []time.Duration{600 * time.Millisecond, 800 * time.Millisecond} {
		t.Run(pause.String(), func(t *testing.T) {
			nodes := startGossip(t, 3)
			nodes[2].tr.pause()
			resume := time.After(pause)
			// Watch every change while paused and for 2 s after: node 3 must
			// never disappear from node 1's view.
			window := time.After(pause + 2*time.Second)
			for {
				if !hasMember(nodes[0].g.Members(), 3) {
					t.Fatalf("node 3 declared dead after a %v pause", pause)
				}
				select {
				case <-resume:
					nodes[2].tr.unpause()
					resume = nil
				case <-nodes[0].g.Changes():
				case <-window:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
}

func TestGossipLongPauseIsDetected(t *testing.T) {
	nodes := startGossip(t, 3)
	nodes[2].tr.pause()
	t.Cleanup(nodes[2].tr.unpause)
	waitFor(t, 10*time.Second, nodes[0].g, func(ms []Member) bool { return !hasMember(ms, 3) })
}

func TestGossipMetaAndLeave(t *testing.T) {
	nodes := startGossip(t, 3)
	require.NoError(t, nodes[1].g.SetLocal(LocalState{Ready: true, Priority: 150, Healthy: true, Candidate: true, Holding: true}))
	waitFor(t, 10*time.Second, nodes[0].g, func(ms []Member) bool {
		for _, m := range ms {
			if m.ID == 2 && m.Holding && m.Priority == 150 && !m.Starting {
				return true
			}
		}
		return false
	})
	require.NoError(t, nodes[1].g.Leave(context.Background()))
	took := waitFor(t, 10*time.Second, nodes[0].g, func(ms []Member) bool {
		for _, m := range ms {
			if m.ID == 2 && m.Left {
				return true
			}
		}
		return false
	})
	if !raceEnabled {
		assert.Less(t, took, 800*time.Millisecond, "a leave is seen at once")
	}
}

func TestGossipSetLocalDoesNotWaitForTheNetwork(t *testing.T) {
	nodes := startGossip(t, 3)
	// A stalled network: memberlist cannot send the update now. SetLocal
	// must neither fail nor block the group's loop (UpdateNode would wait
	// for the broadcast), and the update must arrive once the network is
	// back.
	nodes[1].tr.pause()
	require.NoError(t, nodes[1].g.SetLocal(LocalState{Ready: true, Priority: 150, Healthy: true, Candidate: true, Holding: true}))
	require.NoError(t, nodes[1].g.SetLocal(LocalState{Ready: true, Priority: 160, Healthy: true, Candidate: true, Holding: true}))
	nodes[1].tr.unpause()
	waitFor(t, 10*time.Second, nodes[0].g, func(ms []Member) bool {
		for _, m := range ms {
			if m.ID == 2 && m.Holding && m.Priority == 160 {
				return true
			}
		}
		return false
	})
}

func TestGossipSplit(t *testing.T) {
	nodes := startGossip(t, 3)
	// Cut node 3 off from both others.
	for _, other := range nodes[:2] {
		nodes[2].tr.block(other.addr, true)
		other.tr.block(nodes[2].addr, true)
	}
	waitFor(t, 10*time.Second, nodes[0].g, func(ms []Member) bool { return countAlive(ms) == 2 })
	waitFor(t, 10*time.Second, nodes[2].g, func(ms []Member) bool { return countAlive(ms) == 1 })
}

func TestNewGossipRequiresKey(t *testing.T) {
	_, err := NewGossip(GossipConfig{Group: "g", Self: 1, Bind: "127.0.0.1", Port: 0})
	require.ErrorContains(t, err, "no key")
	g, err := NewGossip(GossipConfig{Group: "g", Self: 1, Bind: "127.0.0.1", Port: 0, Insecure: true})
	require.NoError(t, err)
	require.NoError(t, g.Leave(context.Background()))
}

func TestParseKey(t *testing.T) {
	raw16 := []byte("0123456789abcdef")
	raw32 := make([]byte, 32)
	for i := range raw32 {
		raw32[i] = byte(200 + i%50)
	}
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr bool
	}{
		{"raw 16", raw16, raw16, false},
		{"raw 32 binary", raw32, raw32, false},
		{"base64 32", []byte(base64.StdEncoding.EncodeToString(raw32) + "\n"), raw32, false},
		{"base64 16", []byte(" " + base64.StdEncoding.EncodeToString(raw16) + " "), raw16, false},
		{"short", []byte("short"), nil, true},
		{"neither", []byte("not a key at all!"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// BenchmarkFailoverRealGossip measures in real time, with memberlist on
// loopback, how long a group takes from a holder crash to the assign call,
// split into failure detection (the taker sees the holder gone) and what the
// group adds after it (decision, local address, API read). The fake cloud
// answers at once, so the client-visible outage is this plus the assign
// action's latency. The crash comes right after the group formed, as after
// a restart of the members. Each iteration takes about 1.5 s.
func BenchmarkFailoverRealGossip(b *testing.B) {
	var detect, decide time.Duration
	n := 0
	for b.Loop() {
		d1, d2 := failoverOnce(b)
		detect += d1
		decide += d2
		n++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	b.ReportMetric(ms(detect), "detect-ms/op")
	b.ReportMetric(ms(decide), "decide-ms/op")
	b.ReportMetric(ms(detect+decide), "crash-to-assign-ms/op")
}

// failoverOnce runs a group of three on loopback with node 1 holding, crashes
// node 1 and returns the time from the crash until node 2 saw it gone, and
// from then until node 2's assign call.
func failoverOnce(b *testing.B) (detect, decide time.Duration) {
	b.StopTimer()
	defer b.StartTimer()
	key := make([]byte, 32)
	cloud := newFakeCloud(0, FloatingIP{ID: fipID, Name: "vip", Type: "ipv4", IP: vip.Addr(), ServerID: 1})
	type member struct {
		gossip *Gossip
		group  *Group
		cancel context.CancelFunc
		done   chan error
	}
	var ms []*member
	var first string
	gone := make(chan time.Time, 1)
	for i := range 3 {
		id := int64(i + 1)
		tr, port := newCtlTransport(b)
		var peers []string
		if i > 0 {
			peers = []string{first}
		} else {
			first = "127.0.0.1:" + strconv.Itoa(port)
		}
		g, err := NewGossip(GossipConfig{Group: "bench", Self: id, Bind: "127.0.0.1", Port: port, Peers: peers, Keys: [][]byte{key}, Transport: tr, Log: testLogger(b)})
		require.NoError(b, err)
		hooks := Hooks{}
		if id == 2 {
			hooks.MembersChanged = func(_ string, alive, _ int) {
				if alive == 2 {
					select {
					case gone <- time.Now():
					default:
					}
				}
			}
		}
		grp, err := NewGroup(withConfigDefaults(GroupConfig{Name: "web", Self: id, Priority: 300 - int(id)*10, FloatingIPs: []string{"vip"}, ExpectedSize: 3}),
			GroupDeps{Cloud: cloud, Host: &fakeHost{}, Membership: g, Hooks: hooks, Log: testLogger(b)})
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		m := &member{gossip: g, group: grp, cancel: cancel, done: make(chan error, 1)}
		go func() { m.done <- grp.Run(ctx) }()
		ms = append(ms, m)
	}
	defer func() {
		for _, m := range ms {
			m.cancel()
			<-m.done
		}
	}()
	// Steady state: every member sees every other one ready. This takes
	// tens of milliseconds; a slow formation is reported. Twice in about
	// 25 runs, before SetLocal went through the retrying publisher, a
	// member stayed "starting" in its peers' view for over 10 s (cause not
	// confirmed: a metadata broadcast that never went out).
	formStart := time.Now()
	for deadline := formStart.Add(20 * time.Second); ; {
		ready := true
		for _, m := range ms {
			seen := 0
			for _, mm := range m.group.Status().Members {
				if mm.Alive && !mm.Starting {
					seen++
				}
			}
			ready = ready && seen == 3
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			for _, m := range ms {
				b.Logf("member %d: %+v; gossip %+v", m.group.cfg.Self, m.group.Status().Members, m.gossip.Members())
			}
			b.Fatal("group did not form")
		}
		time.Sleep(10 * time.Millisecond) // polling a steady state, not synchronisation
	}
	if took := time.Since(formStart); took > time.Second {
		b.Logf("group took %v to form", took)
	}
	// Drain any stale alive==2 report from the forming phase.
	select {
	case <-gone:
	default:
	}
	crashed := time.Now()
	require.NoError(b, ms[0].gossip.Shutdown()) // no leave: a crash
	var goneAt time.Time
	select {
	case goneAt = <-gone:
	case <-time.After(10 * time.Second):
		b.Fatal("crash not detected")
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if at, ok := cloud.firstAssignAt(); ok {
			return goneAt.Sub(crashed), at.Sub(goneAt)
		}
		require.True(b, time.Now().Before(deadline), "no assign call")
		time.Sleep(time.Millisecond)
	}
}

func FuzzParseKey(f *testing.F) {
	raw32 := make([]byte, 32)
	for i := range raw32 {
		raw32[i] = byte(200 + i%50)
	}
	for _, seed := range [][]byte{
		[]byte("0123456789abcdef"), raw32,
		[]byte(base64.StdEncoding.EncodeToString(raw32) + "\n"),
		[]byte(" " + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + " "),
		[]byte("short"), []byte("not a key at all!"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err != nil {
			return
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			t.Fatalf("key of %d bytes from %q", n, b)
		}
		// The base64 form, as key files are usually written, parses back
		// to the same key.
		again, err := ParseKey([]byte(base64.StdEncoding.EncodeToString(k) + "\n"))
		require.NoError(t, err)
		assert.Equal(t, k, again)
	})
}

// FuzzGossipMeta feeds arbitrary node metadata to the decoder (peers may run
// other versions): no panic, and what SetLocal encodes decodes to the same
// state.
func FuzzGossipMeta(f *testing.F) {
	f.Add([]byte(`{"v":1}`), 100, true, true, true, false)
	f.Add([]byte(`{"v":1,"p":150,"r":true,"h":true,"c":true,"o":true}`), 150, true, false, true, true)
	f.Add([]byte(`{"v":1,"l":true,"o":true}`), 0, false, false, false, false)
	f.Add([]byte(`{"v":2,"x":1}`), 7, true, true, false, true)
	f.Add([]byte(`not json`), -1, false, true, true, true)
	f.Fuzz(func(t *testing.T, meta []byte, prio int, ready, healthy, candidate, holding bool) {
		m, ok := memberOf(&memberlist.Node{Name: "7", Meta: meta})
		require.True(t, ok)
		assert.Equal(t, int64(7), m.ID)
		assert.False(t, m.Left, "only a leave event marks a member left")
		var g Gossip
		g.update = make(chan struct{}, 1)
		st := LocalState{Ready: ready, Priority: prio, Healthy: healthy, Candidate: candidate, Holding: holding}
		require.NoError(t, g.SetLocal(st))
		m, ok = memberOf(&memberlist.Node{Name: "7", Meta: g.meta})
		require.True(t, ok)
		got := LocalState{Ready: !m.Starting, Priority: m.Priority, Healthy: m.Healthy, Candidate: m.Candidate, Holding: m.Holding}
		assert.Equal(t, st, got)
	})
}
