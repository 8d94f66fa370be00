package floatingip

import (
	"log"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fakePinger records the pings; block, if set, holds each ping until
// closed, and started (if set) gets a value as each ping starts.
type fakePinger struct {
	mu      sync.Mutex
	pings   []string // "node addr"
	block   chan struct{}
	started chan struct{}
}

func (f *fakePinger) Ping(node string, addr net.Addr) (time.Duration, error) {
	f.mu.Lock()
	f.pings = append(f.pings, node+" "+addr.String())
	b := f.block
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if b != nil {
		<-b
	}
	return time.Millisecond, nil
}

func (f *fakePinger) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.pings)
	slices.Sort(out)
	return out
}

func TestIsRefutation(t *testing.T) {
	for _, tc := range []struct {
		line string
		want bool
	}{
		{"[WARN] memberlist: Refuting a suspect message (from: 2)", true},
		{"[WARN] memberlist: Refuting a dead message (from: 3)", true},
		// memberlist's answer to an alive message with other metadata is
		// not about a suspicion: nothing to hurry.
		{"[WARN] memberlist: Refuting an alive message for '1' (10.0.0.1:7946) meta:([] VS [])", false},
		{"[DEBUG] memberlist: Failed UDP ping: 2 (timeout reached)", false},
		{"Refuting a suspect message", true},
	} {
		t.Run(tc.line, func(t *testing.T) {
			_, text := parseMemberlistLine(tc.line)
			assert.Equal(t, tc.want, isRefutation(text))
		})
	}
}

// newRefuteGossip is a Gossip with members 1 (self), 2 and 3 and a fake
// memberlist, enough for the refutation path.
func newRefuteGossip(p pinger) *Gossip {
	g := &Gossip{cfg: GossipConfig{Self: 1}, members: map[string]Member{
		"1": {ID: 1, Name: "srv1", Addr: "10.0.0.1:7946"},
		"2": {ID: 2, Name: "srv2", Addr: "10.0.0.2:7946"},
		"3": {ID: 3, Name: "srv3", Addr: "10.0.0.3:7946"},
	}, stop: make(chan struct{}), published: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	g.pinger = p
	close(g.published) // no publisher in these tests
	return g
}

func TestGossipRefutationPingsEveryPeer(t *testing.T) {
	f := &fakePinger{}
	g := newRefuteGossip(f)
	ml := log.New((*memberlistLog)(g), "", 0)
	ml.Printf("[DEBUG] memberlist: Stream connection from=10.0.0.2:41234")
	g.refutes.Wait()
	assert.Empty(t, f.got(), "no ping without a refutation")

	ml.Printf("[WARN] memberlist: Refuting a suspect message (from: 2)")
	g.refutes.Wait()
	assert.Equal(t, []string{"2 10.0.0.2:7946", "3 10.0.0.3:7946"}, f.got(), "each peer once, not self")
}

func TestGossipRefutationWhilePinging(t *testing.T) {
	f := &fakePinger{block: make(chan struct{}), started: make(chan struct{}, 10)}
	g := newRefuteGossip(f)
	g.refuted()
	<-f.started
	<-f.started // the first round's pings are out
	// Two more refutations now: memberlist queued them after the pings
	// left, so one more round must send them, and one is enough.
	g.refuted()
	g.refuted()
	close(f.block)
	g.refutes.Wait()
	assert.Len(t, f.got(), 4, "two rounds to two peers: %v", f.got())
}

func TestGossipNoRefutationPingsAfterStop(t *testing.T) {
	f := &fakePinger{}
	g := newRefuteGossip(f)
	g.stopWorkers()
	g.refuted()
	g.refutes.Wait()
	assert.Empty(t, f.got())
}
