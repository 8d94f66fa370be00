package e2e

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTeardownAfterAgents checks that closing a cloud with agents and name
// services running leaves no namespace, veth or process behind.
func TestTeardownAfterAgents(t *testing.T) {
	w := newWorld(t, spec{servers: []string{"alpha", "beta"}, group: true, configurePrivate: true})
	w.startAgents()
	w.waitGroupUp()
	var pids []int
	for _, p := range w.agents {
		pids = append(pids, p.PID())
	}
	for _, p := range w.names {
		pids = append(pids, p.PID())
	}
	require.NoError(t, w.c.Close())
	assert.Empty(t, w.c.Leftovers())
	for _, pid := range pids {
		assert.True(t, errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), "process %d still exists", pid)
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), w.c.RunPrefix(), "namespaces left")
	out, err = exec.Command("ip", "-br", "link", "show").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.NotContains(t, string(out), w.c.RunPrefix(), "links left in the root namespace")
	for _, l := range strings.Split(string(out), "\n") {
		assert.False(t, strings.HasPrefix(l, "p1@") || strings.HasPrefix(l, "s1@"), "simcloud veth in the root namespace: %s", l)
	}
}
