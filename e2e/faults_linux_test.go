package e2e

import (
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// assignPath matches the assign action of any floating IP.
const assignPath = "POST /floating_ips/*/actions/assign"

// apiFault is a fault of the API simulator injected right before the holder
// crashes, and how to tell from the request log that it hit the failover.
type apiFault struct {
	name   string
	inject func(sim *cloudapitest.Sim)
	// hit reports whether the requests since the injection show the fault.
	hit func(log []cloudapitest.RequestRecord) bool
}

// apiFaults are the faults of issue 6. The rate limit comes last: it
// empties the project's budget for real, after which every agent holds back
// its polling until the budget's reset an hour later, which would slow the
// recovery steps of any case after it.
var apiFaults = []apiFault{
	{
		name: "locked",
		// The API answers locked while another action runs on the
		// floating IP.
		inject: func(sim *cloudapitest.Sim) { sim.FailNext(assignPath, http.StatusLocked, "locked", 3) },
		hit:    func(log []cloudapitest.RequestRecord) bool { return count(log, assignPath, http.StatusLocked) == 3 },
	},
	{
		name: "5xx",
		inject: func(sim *cloudapitest.Sim) {
			sim.FailNext("GET /floating_ips", http.StatusInternalServerError, "server_error", 2)
			sim.FailNext(assignPath, http.StatusServiceUnavailable, "unavailable", 2)
		},
		hit: func(log []cloudapitest.RequestRecord) bool {
			return count(log, "GET /floating_ips", http.StatusInternalServerError) == 2 &&
				count(log, assignPath, http.StatusServiceUnavailable) == 2
		},
	},
	{
		name: "action error",
		// The assign is accepted but its action ends in "error": the
		// floating IP stays where it was and a new assign is needed.
		inject: func(sim *cloudapitest.Sim) { sim.FailActions(1) },
		hit:    func(log []cloudapitest.RequestRecord) bool { return count(log, assignPath, http.StatusCreated) >= 2 },
	},
	{
		name: "rate limit",
		// The project's budget is used up (by other tools): every request
		// gets 429 rate_limit_exceeded until the bucket refills, one
		// request per second. The injected 429 on the assign makes sure
		// the failover's own assign meets the limit however long the
		// detection takes.
		inject: func(sim *cloudapitest.Sim) {
			sim.SetRateLimitRemaining(0)
			sim.FailNext(assignPath, http.StatusTooManyRequests, "rate_limit_exceeded", 1)
		},
		hit: func(log []cloudapitest.RequestRecord) bool {
			return count(log, assignPath, http.StatusTooManyRequests) >= 1
		},
	},
}

// count counts the requests matching pattern (a method, a blank and a
// path.Match pattern of the path) that got status.
func count(log []cloudapitest.RequestRecord, pattern string, status int) int {
	method, pat, _ := strings.Cut(pattern, " ")
	n := 0
	for _, r := range log {
		if ok, _ := path.Match(pat, r.Path); ok && r.Method == method && r.Status == status {
			n++
		}
	}
	return n
}

// TestAPIFaultsDuringFailover crashes the holder right after an API fault
// was injected: the move must still complete once the API recovers. The
// cases share one world: before each case but the first, the server crashed
// by the one before comes back with a new agent and rejoins, then the case
// crashes the current holder.
func TestAPIFaultsDuringFailover(t *testing.T) {
	// Every case moves the floating IP once more (the action error twice),
	// faster than the default cap of three moves per minute allows.
	w, h := groupWorld(t, spec{servers: []string{"alpha", "beta", "gamma"}, maxMoves: 20})
	crashed := ""
	for _, f := range apiFaults {
		t.Run(f.name, func(t *testing.T) {
			w.t = t // fail (and log) in the subtest
			if crashed != "" {
				w.revive(crashed)
			}
			mark := len(w.sim.RequestLog())
			f.inject(w.sim)
			p := w.probe(probeInterval)
			t0 := time.Now()
			w.crash(h)
			now, _ := w.waitMoved(p, h, t0)
			assert.Equal(t, now, w.c.Holder(w.vip), "the API assigns the floating ip to the server that answers")
			assert.True(t, f.hit(w.sim.RequestLog()[mark:]), "the fault hit the failover")
			crashed, h = h, now
		})
		if t.Failed() {
			break // the shared world is in an unknown state
		}
	}
	w.t = t
}

// revive brings a crashed server back: links and routes, name service and
// agent; it waits until every agent sees the whole group again.
func (w *world) revive(name string) {
	w.t.Helper()
	require.NoError(w.t, w.c.Restore(name))
	p, err := w.c.Server(name).StartNameService(w.ctx, 80)
	require.NoError(w.t, err)
	w.names[name] = p
	w.startAgent(name)
	w.waitMembers(30 * time.Second)
}

// TestIPv6FollowsIPv4 crashes the holder of a group with an IPv4 and an
// IPv6 floating IP: both must answer from the same new server.
func TestIPv6FollowsIPv4(t *testing.T) {
	w, h := groupWorld(t, spec{servers: []string{"alpha", "beta", "gamma"}, ipv6: true})
	require.Equal(t, h, w.waitAnswerOn(w.vip6, 10*time.Second, func(string) bool { return true }), "both floating ips answer from the first holder")
	w.crash(h)
	now := w.waitAnswer(30*time.Second, func(s string) bool { return s != h })
	now6 := w.waitAnswerOn(w.vip6, 30*time.Second, func(s string) bool { return s != h })
	assert.Equal(t, now, now6, "the IPv6 floating ip answers from the server that holds the IPv4 one")
	assert.Equal(t, now, w.c.Holder(w.vip))
	assert.Equal(t, now, w.c.Holder(w.vip6))
	assert.True(t, w.hasAddr(now, w.vip6.Addr()), "the new holder has the IPv6 address configured")
}
