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

// The metadata black hole is there before apply runs (issue 13): the check
// and the pin come before the metadata read, and the read's error names the
// route to blame.
func TestRunOnceMetadataBlackhole(t *testing.T) {
	ctx := context.Background()
	const pinLine = "add route 169.254.169.254/32 via 172.31.1.1 dev eth0 (metadata route pinned to the public gateway)\n"
	const hint = "a route sends 169.254.169.254 via 10.0.0.1 dev ens10 (proto dhcp); set private_networks.pin_metadata_route: true"
	for _, tc := range []struct {
		name       string
		pin, dry   bool
		mdErr      error
		wantOut    string
		wantErr    string
		wantNoHint bool
		wantPinned bool
	}{
		{name: "no pin, metadata times out", mdErr: errors.New("i/o timeout"), wantErr: "i/o timeout; " + hint},
		{name: "no pin, dry run", dry: true, mdErr: errors.New("i/o timeout"), wantErr: "i/o timeout; " + hint},
		{name: "pin, dry run shows the pin", pin: true, dry: true, mdErr: errors.New("i/o timeout"), wantOut: pinLine, wantErr: "i/o timeout", wantNoHint: true},
		{name: "pin applied before the read", pin: true, mdErr: errors.New("i/o timeout"), wantOut: pinLine, wantErr: "i/o timeout", wantNoHint: true, wantPinned: true},
		{name: "pin applied, metadata answers", pin: true, wantPinned: true},
		{name: "pin, dry run, metadata answers", pin: true, dry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := host()
			f.addRoute("169.254.169.254/32", "10.0.0.1", "ens10", unix.RTPROT_DHCP, 0)
			var out strings.Builder
			err := RunOnce(ctx, Options{PinMetadataRoute: tc.pin}, &fakeSource{nets: both(), err: tc.mdErr}, f, "", &out, tc.dry)
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, 1, strings.Count(out.String(), pinLine), "the pin is listed once:\n%s", out.String())
			} else {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, tc.wantOut, out.String())
				if tc.wantNoHint {
					assert.NotContains(t, err.Error(), "a route sends")
				}
			}
			assert.Equal(t, tc.wantPinned, strings.Contains(f.String(), "route 169.254.169.254/32 via 172.31.1.1 dev eth0 proto 71\n"), f.String())
			if tc.dry {
				_, writes := f.counts()
				assert.Zero(t, writes)
			}
		})
	}
}
