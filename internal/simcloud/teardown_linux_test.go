package simcloud

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

// rootVeths lists the veth links of the test process's own namespace.
func rootVeths(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var out []string
	for _, l := range links {
		if l.Type() == "veth" {
			out = append(out, l.Attrs().Name)
		}
	}
	slices.Sort(out)
	return out
}

// namespacesWithPrefix lists /run/netns entries starting with prefix.
func namespacesWithPrefix(prefix string) []string {
	ents, _ := os.ReadDir(netnsDir)
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestTeardownLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("simcloud needs root to create network namespaces; run the tests as root")
	}
	vethsBefore := rootVeths(t)
	c, err := New(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() }) // in case an assertion fails first
	_, err = c.AddNetwork(NetworkSpec{Name: "net-a", Network: mustPrefix("10.0.0.0/16")})
	require.NoError(t, err)
	var procs []*Proc
	for _, name := range []string{"alpha", "beta"} {
		s, err := c.AddServer(ServerSpec{Name: name, Networks: []string{"net-a"}})
		require.NoError(t, err)
		p, err := s.StartNameService(ctxTimeout(t, 10*time.Second), 80)
		require.NoError(t, err)
		procs = append(procs, p)
		// A process the Cloud did not start itself, and a stopped one:
		// both must die too.
		extra, err := s.Start(t.Context(), "sleep", []string{"sleep", "600"}, nil)
		require.NoError(t, err)
		procs = append(procs, extra)
	}
	require.NoError(t, c.ClientDo(func() error { return nil }))
	nsNames := namespacesWithPrefix(c.RunPrefix())
	require.Len(t, nsNames, 5, "cloud, client, net1, alpha, beta")
	var inodes []uint64
	c.mu.Lock()
	for _, n := range c.nsList {
		inodes = append(inodes, n.inode)
	}
	c.mu.Unlock()
	require.NotEmpty(t, pidsInNetNS(inodes[len(inodes)-1]))

	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")

	assert.Empty(t, namespacesWithPrefix(c.RunPrefix()), "namespaces left")
	assert.Equal(t, vethsBefore, rootVeths(t), "veths in the root namespace changed")
	for _, ino := range inodes {
		assert.Empty(t, pidsInNetNS(ino), "processes left in namespace inode %d", ino)
	}
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Errorf("process %s (%d) not reaped", p.Name, p.PID())
		}
		assert.False(t, processAlive(p.PID()), "process %d alive", p.PID())
	}
	assert.Empty(t, c.Leftovers())
	_, err = c.AddServer(ServerSpec{Name: "late"})
	assert.Error(t, err, "a closed cloud builds nothing")
}

func TestStaleNamespacesRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("simcloud needs root to create network namespaces; run the tests as root")
	}
	// A PID above pid_max never belongs to a live process.
	stale := nsName{PID: 1 << 23, Run: os.Getpid(), Role: "cloud"}.String()
	live := nsName{PID: os.Getpid(), Run: 999999, Role: "cloud"}.String()
	for _, name := range []string{stale, live} {
		n, err := newNamespace(name)
		require.NoError(t, err)
		n.nl.Close()
		n.ns.Close()
		t.Cleanup(func() { _ = netns.DeleteNamed(name) })
	}
	removed, err := removeStale()
	require.NoError(t, err)
	assert.Contains(t, removed, stale)
	assert.NotContains(t, removed, live)
	_, err = os.Stat(filepath.Join(netnsDir, stale))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(netnsDir, live))
	assert.NoError(t, err, "a live process's namespace must stay")
}

func TestConnectAPIRoutesOnAssign(t *testing.T) {
	c := newTestCloud(t, false, "alpha", "beta")
	ctx := ctxTimeout(t, 20*time.Second)
	f, err := c.AddFloatingIP(FloatingIPSpec{Name: "vip", Labels: map[string]string{"group": "web"}})
	require.NoError(t, err)
	require.NoError(t, c.RouteFloatingIP(f.Prefix(), "alpha"))
	sim := cloudapitest.New(cloudapitest.WithTokens("secret-token"))
	t.Cleanup(sim.Close)
	require.NoError(t, c.ConnectAPI(sim))
	got, ok := sim.FloatingIP(f.ID())
	require.True(t, ok)
	assert.Equal(t, c.Server("alpha").ID(), got.ServerID)
	for _, s := range c.Servers() {
		_, err := s.StartNameService(ctx, 80)
		require.NoError(t, err)
		require.NoError(t, s.ConfigureFloatingIP(f))
	}
	beta := c.Server("beta")
	// The API is reachable from a server namespace, and a successful
	// assign moves the route.
	url := fmt.Sprintf("%s/floating_ips/%d/actions/assign", c.APIEndpoint(), f.ID())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"server":%d}`, beta.ID())))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer secret-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := beta.HTTPClient().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "beta", c.Holder(f))
	answer, err := c.Get(ctxTimeout(t, 2*time.Second), f.URL())
	require.NoError(t, err)
	assert.Equal(t, "beta", answer)
}
