package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// managerMode is the floating IP manager's read mode in the agent's
// /status on server ("" when it cannot be read).
func (w *world) managerMode(server string) string {
	body, err := w.c.Server(server).Get(w.ctx, "http://127.0.0.1:9183/status")
	if err != nil {
		return ""
	}
	var st struct {
		Components map[string]struct {
			Mode string `json:"mode"`
		} `json:"components"`
	}
	if json.Unmarshal([]byte(body), &st) != nil {
		return ""
	}
	return st.Components["floatingip"].Mode
}

// assignByHand assigns f to server through the API, as an operator (or
// Terraform) would; the simulated cloud routes it when the action is done.
func (w *world) assignByHand(f *simcloud.FloatingIP, server string) {
	w.t.Helper()
	body := fmt.Sprintf(`{"server": %d}`, w.c.Server(server).ID())
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, fmt.Sprintf("http://api/v1/floating_ips/%d/actions/assign", f.ID()), strings.NewReader(body))
	require.NoError(w.t, err)
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: w.sim.Transport()}).Do(req)
	require.NoError(w.t, err)
	resp.Body.Close()
	require.Equal(w.t, http.StatusCreated, resp.StatusCode, "assign %s to %s", f.Name(), server)
}

// TestStandbyFollowsHolderReads: over real gossip the standbys' floating
// IP managers follow the holder's reads (no periodic request of their
// own), and a floating IP the operator assigns to a standby by hand is
// configured there once the holder's next read saw it (issue 14, item 3).
func TestStandbyFollowsHolderReads(t *testing.T) {
	w := newWorld(t, spec{servers: []string{"srv1", "srv2", "srv3"}, group: true, configurePrivate: true, apiPoll: 3 * time.Second})
	w.startAgents()
	w.waitGroupUp()
	modes := map[string]string{"srv1": "reader", "srv2": "follower", "srv3": "follower"}
	waitFor(t, 20*time.Second, 100*time.Millisecond, "the holder reads, the standbys follow", func() bool {
		w.requireAgentsRunning()
		for s, want := range modes {
			if w.managerMode(s) != want {
				return false
			}
		}
		return true
	})

	extra, err := w.c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "extra"})
	require.NoError(t, err)
	w.assignByHand(extra, "srv3")
	took := waitFor(t, 30*time.Second, 50*time.Millisecond, "the hand-assigned floating ip configured on the standby", func() bool {
		w.requireAgentsRunning()
		return w.hasAddr("srv3", extra.Prefix().Addr())
	})
	t.Logf("configured on the standby %s after the assignment (holder's poll interval 3s ±20%%)", took.Round(time.Millisecond))
	require.False(t, w.hasAddr("srv2", extra.Prefix().Addr()), "only where it is assigned")
	require.Equal(t, "follower", w.managerMode("srv3"), "still following after its read")
}
