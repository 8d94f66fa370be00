package netconf

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/hc-agent/hc-agent/metadata"
)

func TestRunOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "netconf-owned.json")
	f := host()
	src := &fakeSource{nets: []metadata.PrivateNetwork{nwTest1()}}

	var out strings.Builder
	require.NoError(t, RunOnce(ctx, Options{}, src, f, path, &out, true))
	assert.Equal(t, `replace mtu 1450 dev ens10 (network nw-test1 1234: mtu was 1500)
replace link up dev ens10 (network nw-test1 1234: link was down)
add address 10.0.0.2/32 dev ens10 (network nw-test1 1234: ip)
add address 10.0.0.3/32 dev ens10 (network nw-test1 1234: alias ip)
add address 10.0.0.4/32 dev ens10 (network nw-test1 1234: alias ip)
add route 10.0.0.1/32 scope link dev ens10 (network nw-test1 1234: gateway)
add route 10.0.0.0/8 via 10.0.0.1 dev ens10 (network nw-test1 1234: network)
`, out.String())
	_, writes := f.counts()
	assert.Zero(t, writes, "dry run changes nothing")

	out.Reset()
	require.NoError(t, RunOnce(ctx, Options{}, src, f, path, &out, false))
	assert.Equal(t, 7, strings.Count(out.String(), "\n"))
	o, err := LoadOwned(path)
	require.NoError(t, err)
	assert.Len(t, o.Addresses, 3)

	out.Reset()
	require.NoError(t, RunOnce(ctx, Options{}, src, f, path, &out, true))
	assert.Equal(t, "nothing to change\n", out.String())

	// The alias IPs go, using the ownership record the last run saved.
	n1 := nwTest1()
	n1.AliasIPs = nil
	src.set([]metadata.PrivateNetwork{n1}, nil)
	out.Reset()
	require.NoError(t, RunOnce(ctx, Options{}, src, f, path, &out, false))
	assert.Equal(t, `remove address 10.0.0.3/32 dev ens10 (address of hc-agent no longer in metadata)
remove address 10.0.0.4/32 dev ens10 (address of hc-agent no longer in metadata)
`, out.String())
}

func TestRunOnceFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("metadata error changes nothing", func(t *testing.T) {
		f := host()
		before := f.String()
		var out strings.Builder
		err := RunOnce(ctx, Options{}, &fakeSource{err: errors.New("timeout")}, f, "", &out, false)
		require.ErrorContains(t, err, "read private networks from metadata: timeout")
		assert.Equal(t, before, f.String())
	})
	t.Run("write failure is an error", func(t *testing.T) {
		f := host()
		f.fail["RouteReplace"] = unix.EPERM
		var out strings.Builder
		err := RunOnce(ctx, Options{}, &fakeSource{nets: both()}, f, "", &out, false)
		require.ErrorIs(t, err, unix.EPERM)
		assert.Contains(t, out.String(), "add address 192.168.0.2/32 dev ens11")
	})
	t.Run("disabled", func(t *testing.T) {
		f := host()
		var out strings.Builder
		require.NoError(t, RunOnce(ctx, Options{Disabled: true}, &fakeSource{nets: both()}, f, "", &out, false))
		assert.Equal(t, "private network management is disabled: nothing to do\n", out.String())
	})
}
