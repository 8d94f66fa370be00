package floatingip

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A member that was paused (a live migration) finds, when it runs again,
// the suspect messages its peers sent about it, and memberlist refutes
// them: it queues an alive message with a higher incarnation. memberlist
// sends queued messages only piggybacked on its next packet: the next
// probe (up to ProbeInterval later), gossip tick (GossipInterval) or the
// ack of a ping that arrives after the suspect message. A pause of 800 ms
// leaves about 100 ms before the peers' suspicion ends (see the timing
// comment in gossip.go), so that wait lost the race now and then (issue
// 14: 1 of 10 bench pauses moved the address). When memberlist says it
// refuted, the member pings each peer at once: memberlist's Ping
// piggybacks the queued refutation like any other packet, so it goes out
// within the time of one packet. It costs nothing while no one suspects
// this member.

// pinger is the memberlist call that sends a packet (and the broadcasts
// queued) to a member now; *memberlist.Memberlist implements it.
type pinger interface {
	Ping(node string, addr net.Addr) (time.Duration, error)
}

// isRefutation reports whether a memberlist log text (level tag and
// prefix removed) says memberlist refuted a suspect or dead message about
// this member. memberlist v0.5.4 logs it right after queueing the
// refutation.
func isRefutation(text string) bool {
	return strings.HasPrefix(text, "Refuting a suspect message") || strings.HasPrefix(text, "Refuting a dead message")
}

// refuted sends the queued refutation now (see above). It does not block:
// memberlist calls the logger with its node lock held. After stopWorkers
// it does nothing.
func (g *Gossip) refuted() {
	g.refutePending.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pinger == nil || !g.refuting.CompareAndSwap(false, true) {
		return // not running, or the running sender takes this one too
	}
	g.refutes.Add(1)
	go g.sendRefutations() // exits after one ping round per pending refutation
}

// sendRefutations pings every member once per pending refutation. A
// refutation that arrives while the pings are out is sent by one more
// round.
func (g *Gossip) sendRefutations() {
	defer g.refutes.Done()
	for {
		for g.refutePending.Swap(false) {
			g.pingMembers()
		}
		g.refuting.Store(false)
		if !g.refutePending.Load() || !g.refuting.CompareAndSwap(false, true) {
			return
		}
	}
}

// pingMembers pings every member but this one, all at once, and waits for
// the acks (at most ProbeTimeout).
func (g *Gossip) pingMembers() {
	self := strconv.FormatInt(g.cfg.Self, 10)
	type target struct {
		name string
		addr net.Addr
	}
	g.mu.Lock()
	p := g.pinger
	var targets []target
	for name, m := range g.members {
		if name == self {
			continue
		}
		ap, err := netip.ParseAddrPort(m.Addr)
		if err != nil {
			continue
		}
		targets = append(targets, target{name, net.UDPAddrFromAddrPort(ap)})
	}
	g.mu.Unlock()
	if p == nil {
		return // memberlist is still starting
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Go(func() { _, _ = p.Ping(t.name, t.addr) })
	}
	wg.Wait()
}
