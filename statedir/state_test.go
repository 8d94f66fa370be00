package statedir

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}

func TestPrepareImage(t *testing.T) {
	for _, dryRun := range []bool{true, false} {
		t.Run(map[bool]string{true: "dry run", false: "remove"}[dryRun], func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, StateFile), `{"instance_id": 1}`)
			writeFile(t, filepath.Join(dir, "netconf-owned.json"), `{}`)
			writeFile(t, filepath.Join(dir, "groups", "web.json"), `{}`) // not hc-agent's
			want := []string{filepath.Join(dir, "netconf-owned.json"), filepath.Join(dir, StateFile)}

			got, err := PrepareImage(dir, dryRun)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			left, err := StateEntries(dir)
			require.NoError(t, err)
			if dryRun {
				assert.Equal(t, want, left)
			} else {
				assert.Empty(t, left)
				_, err := os.Stat(dir)
				assert.NoError(t, err, "the state dir itself belongs to systemd and stays")
			}
			_, err = os.Stat(filepath.Join(dir, "groups", "web.json"))
			assert.NoError(t, err, "a file that is not hc-agent's stays")
		})
	}
	t.Run("missing dir", func(t *testing.T) {
		got, err := PrepareImage(filepath.Join(t.TempDir(), "nope"), false)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
}

func TestStateRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	want := State{InstanceID: 99, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Version: "v1"}
	require.NoError(t, SaveState(dir, want))
	got, ok, err := LoadState(dir)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, want, got)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

func TestParseState(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    State
		wantErr string
	}{
		{name: "full", in: `{"instance_id": 42, "created_at": "2026-01-02T03:04:05Z", "version": "v1"}`,
			want: State{InstanceID: 42, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Version: "v1"}},
		{name: "id only", in: `{"instance_id": 7}`, want: State{InstanceID: 7}},
		{name: "unknown key", in: `{"instance_id": 7, "hostname": "x"}`, wantErr: "unknown field"},
		{name: "trailing", in: `{"instance_id": 7} {}`, wantErr: "trailing data"},
		{name: "not json", in: `instance_id: 7`, wantErr: "parse state record"},
		{name: "wrong type", in: `{"instance_id": "7"}`, wantErr: "parse state record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseState([]byte(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseState: no panic, and parse → marshal → parse is stable.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{
		`{"instance_id": 42, "created_at": "2026-01-02T03:04:05Z", "version": "v1"}`,
		`{"instance_id": 7}`, `{"instance_id": 7} {}`, `{}`, `null`, `{"instance_id": -1, "version": "\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseState(b)
		if err != nil {
			return
		}
		out, err := st.Marshal()
		require.NoError(t, err)
		again, err := ParseState(out)
		require.NoError(t, err, "re-parse %s", out)
		assert.True(t, st.CreatedAt.Equal(again.CreatedAt))
		st.CreatedAt, again.CreatedAt = time.Time{}, time.Time{}
		assert.Equal(t, st, again)
	})
}
