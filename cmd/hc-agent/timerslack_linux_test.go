package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetTimerSlack(t *testing.T) {
	for _, tc := range []struct {
		name        string
		threads     map[string]string // tid -> timerslack_ns ("" = no file)
		want        map[string]string
		wantChanged int
	}{
		{"raises every thread", map[string]string{"10": "50000\n", "11": "50000\n"}, map[string]string{"10": "1000000", "11": "1000000"}, 2},
		{"keeps a larger slack", map[string]string{"10": "5000000\n", "11": "50000\n"}, map[string]string{"10": "5000000\n", "11": "1000000"}, 1},
		{"skips a thread that is gone", map[string]string{"10": "", "11": "50000\n"}, map[string]string{"11": "1000000"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := t.TempDir()
			for tid, v := range tc.threads {
				require.NoError(t, os.MkdirAll(filepath.Join(proc, "self", "task", tid), 0o700))
				if v != "" {
					require.NoError(t, os.MkdirAll(filepath.Join(proc, tid), 0o700))
					require.NoError(t, os.WriteFile(filepath.Join(proc, tid, "timerslack_ns"), []byte(v), 0o600))
				}
			}
			assert.Equal(t, tc.wantChanged, setTimerSlack(proc, time.Millisecond))
			for tid, v := range tc.want {
				b, err := os.ReadFile(filepath.Join(proc, tid, "timerslack_ns"))
				require.NoError(t, err)
				assert.Equal(t, v, string(b), "thread %s", tid)
			}
		})
	}
}

// TestSetTimerSlackProc sets the slack of this test process's threads
// through the real /proc (root: CAP_SYS_NICE for the other threads).
func TestSetTimerSlackProc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_SYS_NICE) to set other threads' timer slack")
	}
	if _, err := os.Stat("/proc/thread-self/timerslack_ns"); err != nil {
		t.Skipf("no timerslack_ns in /proc: %v", err)
	}
	const slack = 2 * time.Millisecond
	setTimerSlack("/proc", slack)
	ents, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "timerslack_ns"))
		if err != nil {
			continue // the thread ended
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, v, slack.Nanoseconds(), "thread %s", e.Name())
	}
}
