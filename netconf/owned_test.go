package netconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ownedSeeds = []struct {
	name    string
	in      string
	want    []OwnedAddress
	wantErr string
}{
	{name: "empty", in: `{"version":1,"addresses":[]}`, want: []OwnedAddress{}},
	{name: "null addresses", in: `{"version":1,"addresses":null}`, want: []OwnedAddress{}},
	{
		name: "sorted, deduplicated, mac lower-cased",
		in:   `{"version":1,"addresses":[{"mac":"86:00:00:2A:7D:E0","prefix":"10.0.0.4/32"},{"mac":"86:00:00:2a:7d:e0","prefix":"10.0.0.3/32"},{"mac":"86:00:00:2a:7d:e0","prefix":"10.0.0.4/32"}]}`,
		want: []OwnedAddress{
			{MAC: "86:00:00:2a:7d:e0", Prefix: netip.MustParsePrefix("10.0.0.3/32")},
			{MAC: "86:00:00:2a:7d:e0", Prefix: netip.MustParsePrefix("10.0.0.4/32")},
		},
	},
	{name: "wrong version", in: `{"version":2,"addresses":[]}`, wantErr: "unsupported version 2"},
	{name: "unknown field", in: `{"version":1,"addresses":[],"routes":[]}`, wantErr: "unknown field"},
	{name: "bad mac", in: `{"version":1,"addresses":[{"mac":"zz","prefix":"10.0.0.3/32"}]}`, wantErr: "invalid mac"},
	{name: "ipv6 prefix", in: `{"version":1,"addresses":[{"mac":"86:00:00:2a:7d:e0","prefix":"fd00::1/128"}]}`, wantErr: "invalid ipv4 prefix"},
	{name: "missing prefix", in: `{"version":1,"addresses":[{"mac":"86:00:00:2a:7d:e0"}]}`, wantErr: "invalid ipv4 prefix"},
	{name: "not json", in: `version: 1`, wantErr: "decode ownership record"},
}

func TestParseOwned(t *testing.T) {
	for _, tt := range ownedSeeds {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOwned([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.Addresses)
		})
	}
}

func TestOwnedLoadSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "netconf-owned.json")

	o, err := LoadOwned(path)
	require.NoError(t, err, "a missing file is an empty record")
	assert.Empty(t, o.Addresses)

	o.add(mustMAC("86:00:00:00:00:01"), netip.MustParsePrefix("10.0.0.3/32"))
	require.NoError(t, SaveOwned(path, o))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	got, err := LoadOwned(path)
	require.NoError(t, err)
	assert.Equal(t, o, got)
	assert.True(t, got.Has(mustMAC("86:00:00:00:00:01"), netip.MustParsePrefix("10.0.0.3/32")))

	require.NoError(t, os.WriteFile(path, []byte("{"), 0o600))
	_, err = LoadOwned(path)
	assert.ErrorContains(t, err, "decode ownership record")
}

// FuzzParseOwned checks that parsing never panics and that parse → marshal →
// parse is stable.
func FuzzParseOwned(f *testing.F) {
	for _, s := range ownedSeeds {
		f.Add([]byte(s.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOwned(data)
		if err != nil {
			return
		}
		out, err := o.Marshal()
		if err != nil {
			t.Fatalf("marshal parsed record: %v", err)
		}
		again, err := ParseOwned(out)
		if err != nil {
			t.Fatalf("parse marshalled record: %v\n%s", err, out)
		}
		if !assert.Equal(t, o, again) {
			t.Fatalf("parse → marshal → parse changed the record")
		}
	})
}
