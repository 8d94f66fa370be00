package floatingip

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hc-agent/hc-agent/metrics"
)

// staticMembership is a Membership whose members never change; Members
// returns the same slice without allocating, so that a benchmark measures
// the group and not the fake.
type staticMembership struct {
	ms      []Member
	changes chan struct{}
}

func (s *staticMembership) Members() []Member               { return s.ms }
func (s *staticMembership) SetLocal(LocalState) error       { return nil }
func (s *staticMembership) Changes() <-chan struct{}        { return s.changes }
func (s *staticMembership) Leave(ctx context.Context) error { return nil }

// metricsHooks are the hooks as the daemon wires them (agent.GroupHooks):
// member counts and roles feed labelled Prometheus gauges of m.
func metricsHooks(m *metrics.Metrics) Hooks {
	return Hooks{
		RoleChanged:    func(group string, role Role) { m.SetGroupRole(group, string(role)) },
		MembersChanged: func(group string, alive, healthy int) { m.SetGroupMembers(group, alive, healthy) },
	}
}

// settledGroup returns member self of a settled group of three (server 1
// holds) and its membership, whose members a test may change (then it
// calls evaluate).
func settledGroup(tb testing.TB, self int64, hooks Hooks) (*Group, *staticMembership) {
	tb.Helper()
	ms := []Member{
		{ID: 1, Priority: 200, Alive: true, Healthy: true, Candidate: true, Holding: true},
		{ID: 2, Priority: 150, Alive: true, Healthy: true, Candidate: true},
		{ID: 3, Priority: 120, Alive: true, Healthy: true, Candidate: true},
	}
	sm := &staticMembership{ms: ms, changes: make(chan struct{})}
	g, err := NewGroup(withConfigDefaults(GroupConfig{Name: "web", Self: self, Priority: ms[self-1].Priority, FloatingIPs: []string{"vip"}, ExpectedSize: 3}),
		GroupDeps{
			Cloud: newFakeCloud(0, FloatingIP{ID: fipID, Name: "vip", Type: "ipv4", IP: vip.Addr(), ServerID: 1}), Host: &fakeHost{},
			Membership: sm, Probe: (&switchProbe{}).probe,
			Hooks: hooks,
		})
	if err != nil {
		tb.Fatal(err)
	}
	g.startedAt = time.Now().Add(-time.Hour)
	g.healthy, g.knownHolder, g.holding = true, 1, self == 1
	g.evaluate(context.Background()) // the first look sees everybody join
	return g, sm
}

// BenchmarkGroupEvaluate is one evaluation of a settled group of three
// with nothing new: what every wake of the loop costs.
func BenchmarkGroupEvaluate(b *testing.B) {
	for _, bc := range []struct {
		name string
		self int64
	}{{"holder", 1}, {"standby", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			g, _ := settledGroup(b, bc.self, metricsHooks(metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{})))
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				g.evaluate(ctx)
			}
		})
	}
}
