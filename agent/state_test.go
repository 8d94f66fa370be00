package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hc-agent/hc-agent/statedir"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/config"
)

func TestCheckState(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string // relative path -> content
		wantKept    []string          // relative paths left besides state.json
		wantDiscard bool
	}{
		{name: "empty dir"},
		{
			name:     "same instance keeps state",
			files:    map[string]string{statedir.StateFile: `{"instance_id": 42}`, "netconf-owned.json": "{}"},
			wantKept: []string{"netconf-owned.json"},
		},
		{
			name: "other instance discards hc-agent's files",
			files: map[string]string{statedir.StateFile: `{"instance_id": 41}`, "netconf-owned.json": "{}",
				"floatingip-owned.json": "{}", "netconf-owned.json.123.tmp": "{}", "groups/web.json": "{}"},
			wantKept:    []string{"groups/web.json"}, // not hc-agent's
			wantDiscard: true,
		},
		{
			name:        "files without a record are discarded",
			files:       map[string]string{"netconf-owned.json": "{}"},
			wantDiscard: true,
		},
		{
			// state_dir pointed at a directory with other content: without
			// a record nothing of hc-agent's is there, so nothing happens.
			name:     "foreign files alone are left alone",
			files:    map[string]string{"passwd": "root", "lib/x.so": "", "state.jsonx": ""},
			wantKept: []string{"lib/x.so", "passwd", "state.jsonx"},
		},
		{
			name:        "unreadable record discards",
			files:       map[string]string{statedir.StateFile: `{not json`, "netconf-owned.json": "{}"},
			wantDiscard: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, c := range tt.files {
				writeFile(t, filepath.Join(dir, p), c)
			}
			var logs bytes.Buffer
			a, err := New(config.Config{StateDir: dir}, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
			require.NoError(t, err)
			require.NoError(t, a.checkState(42))

			st, ok, err := statedir.LoadState(dir)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, int64(42), st.InstanceID)
			var got []string
			require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				if rel, _ := filepath.Rel(dir, p); rel != statedir.StateFile {
					got = append(got, rel)
				}
				return nil
			}))
			sort.Strings(got)
			assert.Equal(t, tt.wantKept, got)
			assert.Equal(t, tt.wantDiscard, bytes.Contains(logs.Bytes(), []byte("state from another server discarded")), logs.String())
		})
	}
}

type countTrigger struct{ n int }

func (c *countTrigger) Trigger() { c.n++ }

// TestKeepLoopBusy checks that the reconcile loop is triggered every half
// watchdog interval, in fake time.
func TestKeepLoopBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, err := New(config.Config{StateDir: t.TempDir()}, Options{})
		require.NoError(t, err)
		tr := &countTrigger{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { a.keepLoopBusy(ctx, 15*time.Second, []Triggerer{tr}); close(done) }()
		time.Sleep(61 * time.Second)
		synctest.Wait()
		assert.Equal(t, 4, tr.n)
		cancel()
		<-done
	})
}
