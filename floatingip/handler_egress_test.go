package floatingip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeEgress records what each group holds, as netconf.EgressController
// would apply it.
type fakeEgress struct {
	mu   sync.Mutex
	held map[string][]netip.Addr
	log  []string
	fail error
}

func (f *fakeEgress) Set(_ context.Context, group string, held []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = map[string][]netip.Addr{}
	}
	f.held[group] = held
	f.log = append(f.log, fmt.Sprintf("%s %v", group, held))
	return f.fail
}

func (f *fakeEgress) current(group string) []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[group]
}

func TestEgressFloatingIPs(t *testing.T) {
	ctx := context.Background()
	v4 := FloatingIP{ID: 1, Type: "ipv4", IP: netip.MustParseAddr("203.0.113.10"), Network: netip.MustParsePrefix("203.0.113.10/32"), ServerID: 2}
	v6 := FloatingIP{ID: 2, Type: "ipv6", IP: netip.MustParseAddr("2001:db8:ff::"), Network: netip.MustParsePrefix("2001:db8:ff::/64"), ServerID: 2}
	cloud := newFakeCloud(0, v4, v6)
	host := &fakeHost{}
	fh, err := NewFloatingIPs(FloatingIPsConfig{Self: 1, Refs: []string{"1", "2"}, Owner: "group:web",
		IPv6Host: netip.MustParseAddr("::1"), ActionTimeout: time.Minute, Cloud: cloud, Host: host})
	require.NoError(t, err)
	eg := &fakeEgress{}
	h := NewEgressFloatingIPs(fh, "web", eg)
	held := []netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("2001:db8:ff::1")}

	// Another server holds them: no egress.
	holder, err := h.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), holder)
	assert.Nil(t, eg.current("web"))

	// The fast path configures before the move: still no egress, the
	// cloud routes replies to the old holder.
	require.NoError(t, h.Configure(ctx))
	assert.Nil(t, eg.current("web"))
	require.NoError(t, h.Acquire(ctx))
	assert.Nil(t, eg.current("web"))

	// The verifying read says we hold them: egress from both families.
	holder, err = h.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), holder)
	assert.Equal(t, held, eg.current("web"))

	// Another server took them while we were paused: egress ends at the
	// next read, before the group unconfigures.
	cloud.mu.Lock()
	cloud.fips[1].ServerID = 3
	cloud.mu.Unlock()
	_, err = h.Holder(ctx)
	require.NoError(t, err)
	assert.Nil(t, eg.current("web"))

	// Adoption at start: held by the API, then configured.
	cloud.mu.Lock()
	cloud.fips[1].ServerID = 1
	cloud.mu.Unlock()
	require.NoError(t, h.Unconfigure(ctx))
	_, err = h.Holder(ctx)
	require.NoError(t, err)
	assert.Nil(t, eg.current("web"), "held but not configured yet")
	require.NoError(t, h.Configure(ctx))
	assert.Equal(t, held, eg.current("web"))

	// Step-down or hand-over: egress ends, then the addresses go.
	require.NoError(t, h.Unconfigure(ctx))
	assert.Nil(t, eg.current("web"))
	assert.Empty(t, host.configured("group:web"))

	// Egress failures never stop the failover.
	eg.fail = errors.New("no default route")
	holder, err = h.Holder(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), holder)
	require.NoError(t, h.Configure(ctx))
	require.NoError(t, h.Unconfigure(ctx))
}
