package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/internal/simcloud"
)

func TestMain(m *testing.M) {
	simcloud.RunHelper()
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr bool
	}{
		{"defaults", nil, options{agent: "bin/hc-agent"}, false},
		{"all", []string{"--agent", "x", "--keep-going", "--verbose"}, options{agent: "x", keepGoing: true, verbose: true}, false},
		{"no agent", []string{"--agent="}, options{}, false},
		{"unknown flag", []string{"--nope"}, options{}, true},
		{"positional", []string{"extra"}, options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(step); return t }
}

func TestSteps(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name      string
		keepGoing bool
		results   []error
		wantErrs  []error // what step returns for each
		wantOut   []string
		failed    bool
	}{
		{
			name:     "ok and skipped",
			results:  []error{nil, skip("needs hc-agent")},
			wantErrs: []error{nil, nil},
			wantOut:  []string{"[1] one", "ok (100ms)", "[2] two", "skipped: needs hc-agent", "[1] ok", "[2] skipped"},
		},
		{
			name:     "failure stops",
			results:  []error{boom},
			wantErrs: []error{boom},
			wantOut:  []string{"FAILED after 100ms: boom", "[1] FAILED"},
			failed:   true,
		},
		{
			name:      "keep going",
			keepGoing: true,
			results:   []error{boom, nil},
			wantErrs:  []error{nil, nil},
			wantOut:   []string{"FAILED after 100ms: boom", "[2] two"},
			failed:    true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			d := newDemo(&buf, tt.keepGoing)
			d.now = fakeClock(100 * time.Millisecond)
			for i, res := range tt.results {
				title := []string{"one", "two"}[i]
				err := d.step(title, func() error { d.note("note %d", i); return res })
				assert.Equal(t, tt.wantErrs[i], err)
			}
			d.summary()
			for _, w := range tt.wantOut {
				assert.Contains(t, buf.String(), w)
			}
			assert.Equal(t, tt.failed, d.failed())
		})
	}
}

func TestFmtDur(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{850 * time.Millisecond, "850ms"}, {1420 * time.Millisecond, "1.42s"}, {0, "0ms"}} {
		assert.Equal(t, tt.want, fmtDur(tt.d))
	}
}

// TestDemoWithoutAgent runs the whole demo without hc-agent: every step
// that needs no agent passes and the teardown leaves nothing behind.
func TestDemoWithoutAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the demo needs root to create network namespaces; run the tests as root")
	}
	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"--agent="}, &out, &errOut)
	require.NoError(t, err, out.String())
	s := out.String()
	assert.Contains(t, s, `-> "srv-1"`)
	assert.Contains(t, s, "now answered by srv-2")
	assert.Contains(t, s, "nothing left")
	assert.Contains(t, s, "new NIC in srv-2: ens11 86:00:00:")
	assert.NotContains(t, s, "FAILED")
	assert.Empty(t, leftoverNamespaces(t), "namespaces of this process left")
}

// leftoverNamespaces lists namespaces of this process's simulated clouds.
func leftoverNamespaces(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	prefix := "hcs-" + strconv.Itoa(os.Getpid()) + "-"
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
