package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/control"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// controlOf is a client of the control socket of the agent on server name:
// a Unix socket in its runtime_dir, reachable from the test's namespace.
func (w *world) controlOf(name string) *control.Client {
	return control.NewClient(control.Path(filepath.Join(w.dir, name, "run")))
}

// reload rewrites server name's config with edit applied to its current
// content and asks the agent to reload it.
func (w *world) reload(name string, edit func(string) string) {
	w.t.Helper()
	path := filepath.Join(w.dir, name, "config.yaml")
	b, err := os.ReadFile(path)
	require.NoError(w.t, err)
	require.NoError(w.t, os.WriteFile(path, []byte(edit(string(b))), 0o600))
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	require.NoError(w.t, w.controlOf(name).Reload(ctx), "reload on %s", name)
}

// assignsOf counts successful assign actions of floating IP f.
func (w *world) assignsOf(f *simcloud.FloatingIP) int {
	n := 0
	suffix := fmt.Sprintf("/floating_ips/%d/actions/assign", f.ID())
	for _, r := range w.sim.RequestLog() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, suffix) && r.Status/100 == 2 {
			n++
		}
	}
	return n
}

// groupMetric reads one line of server name's metrics that starts with
// prefix ("" when absent).
func (w *world) groupMetric(name, prefix string) string {
	m, err := w.c.Server(name).Get(w.ctx, "http://127.0.0.1:9183/metrics")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestReloadGroupAddChangeRemove adds a second group (its own floating IP)
// to every running agent, changes the first group's priority in place and
// removes the second group again, all by reload: the first group's IP
// answers from the same server throughout, with no failed request.
func TestReloadGroupAddChangeRemove(t *testing.T) {
	w := newWorld(t, spec{servers: []string{"alpha", "beta", "gamma"}, group: true})
	db, err := w.c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "db-vip", Labels: map[string]string{"group": "db"}})
	require.NoError(t, err)
	w.startAgents()
	h := w.waitGroupUp()
	before := w.assignsOf(w.vip)
	p := w.probe(probeInterval)

	dbGroup := func(self string) string {
		var peers []string
		for _, name := range w.others(self) {
			_, nets := w.c.Server(name).Metadata()
			peers = append(peers, nets[0].IP.String())
		}
		return fmt.Sprintf(`  - name: db
    floating_ips: [db-vip]
    peers: [%s]
    port: 7947
    key_file: %s
`, strings.Join(peers, ", "), filepath.Join(w.dir, "gossip.key"))
	}
	t.Log("add group db everywhere")
	for _, name := range w.spec.servers {
		w.reload(name, func(c string) string { return c + dbGroup(name) })
	}
	// The new group takes its unassigned floating IP.
	waitFor(t, 30*time.Second, 100*time.Millisecond, "db-vip assigned", func() bool { return w.c.Holder(db) != "" })
	waitFor(t, 10*time.Second, 100*time.Millisecond, "db-vip answers", func() bool { return w.answerOn(db) == w.c.Holder(db) })

	t.Log("change web's priority and health check interval on the holder")
	w.reload(h, func(c string) string {
		c = strings.Replace(c, "      interval: 200ms\n", "      interval: 300ms\n", 1)
		return strings.Replace(c, "  - name: web\n", "  - name: web\n    priority: 170\n", 1)
	})
	assert.Contains(t, w.agents[h].Output(), `msg="settings updated" group=web priority=170`, "web changed in place")
	assert.Contains(t, w.agents[h].Output(), `msg="health check updated" group=web type=http interval=300ms`, "web's health check changed in place")

	t.Log("remove group db everywhere")
	for _, name := range w.spec.servers {
		w.reload(name, func(c string) string { return strings.Replace(c, dbGroup(name), "", 1) })
	}
	waitFor(t, 10*time.Second, 100*time.Millisecond, "db group gone", func() bool {
		for _, name := range w.spec.servers {
			if w.groupMetric(name, `hcagent_group_members_alive{group="db"}`) != "" {
				return false
			}
		}
		return true
	})

	samples := p.Stop()
	assert.Equal(t, []string{h}, servers(samples), "who answered on web's floating IP")
	assert.Zero(t, failures(samples), "failed client requests on web's floating IP")
	assert.Equal(t, h, w.c.Holder(w.vip))
	// db-vip was assigned when db started and handed over as each member
	// removed the group; web's floating IP never moved.
	assert.Equal(t, 0, w.assignsOf(w.vip)-before, "assign actions of web's floating IP")
	for _, name := range w.spec.servers {
		out := w.agents[name].Output()
		assert.Contains(t, out, `msg="reload: starting a new group" group=db`)
		assert.Contains(t, out, `msg="group stopped" group=db`)
		assert.NotContains(t, out, `msg="group stopped" group=web`)
	}
	w.requireAgentsRunning()
}

// TestKeyRotation rotates the gossip key of a running group of three in
// the three rounds README gives, reloading every member in each round: no
// move, no failed client request, and the group stays whole.
func TestKeyRotation(t *testing.T) {
	w, h := groupWorld(t, spec{servers: []string{"alpha", "beta", "gamma"}})
	before := w.assigns()
	p := w.probe(probeInterval)
	keyFile := filepath.Join(w.dir, "gossip.key")
	oldKey, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	oldLine := strings.TrimSpace(string(oldKey))
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	newLine := base64.StdEncoding.EncodeToString(raw)

	for _, round := range []struct {
		name  string
		lines []string
	}{
		{"add the new key second", []string{oldLine, newLine}},
		{"make the new key first", []string{newLine, oldLine}},
		{"remove the old key", []string{newLine}},
	} {
		t.Log(round.name)
		require.NoError(t, os.WriteFile(keyFile, []byte(strings.Join(round.lines, "\n")+"\n"), 0o600))
		for _, name := range w.spec.servers {
			w.reload(name, func(c string) string { return c })
		}
		w.waitMembers(10 * time.Second)
	}
	// Observation window (not synchronisation): gossip under the new key
	// alone for a few probe rounds.
	w.observe(3 * time.Second)
	w.waitMembers(10 * time.Second)
	samples := p.Stop()
	assert.Equal(t, []string{h}, servers(samples), "who answered")
	assert.Zero(t, failures(samples), "failed client requests")
	assert.Equal(t, before, w.assigns(), "assign actions during the rotation")
	for _, name := range w.spec.servers {
		assert.Equal(t, 3, strings.Count(w.agents[name].Output(), "gossip keys changed"), "keyring changes on %s", name)
	}
}

// TestDrainAndResume drains the holder with the control socket (what
// `hc-agent handover` does): a peer takes the floating IP, the drained
// member does not take it back even when it is the best candidate, until
// it resumes.
func TestDrainAndResume(t *testing.T) {
	w, h := groupWorld(t, spec{servers: []string{"alpha", "beta", "gamma"}})
	p := w.probe(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	t0 := time.Now()
	require.NoError(t, w.controlOf(h).Handover(ctx, nil))
	now, _ := w.waitMoved(p, h, t0)
	assert.NotEqual(t, h, now)
	var st struct {
		Groups []struct {
			Name    string `json:"name"`
			Drained bool   `json:"drained"`
		} `json:"groups"`
	}
	require.NoError(t, w.controlOf(h).Status(ctx, &st))
	require.Len(t, st.Groups, 1)
	assert.True(t, st.Groups[0].Drained, "status shows the drained member")
	require.NoError(t, w.controlOf(h).Resume(ctx, nil))
	require.NoError(t, w.controlOf(h).Status(ctx, &st))
	assert.False(t, st.Groups[0].Drained, "resumed")
	w.requireAgentsRunning()
}
