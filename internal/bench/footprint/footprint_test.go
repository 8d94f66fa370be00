package footprint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var statusCases = []struct {
	name    string
	in      string
	want    int64
	wantErr bool
}{
	{name: "typical", in: "Name:\thc-agent\nState:\tS (sleeping)\nVmPeak:\t  1247000 kB\nVmRSS:\t   12345 kB\nRssAnon:\t    5000 kB\n", want: 12345 * 1024},
	{name: "zero", in: "VmRSS:\t0 kB\n", want: 0},
	{name: "no newline", in: "VmRSS: 4 kB", want: 4096},
	{name: "kernel thread", in: "Name:\tkthreadd\nState:\tS (sleeping)\n", wantErr: true},
	{name: "bad unit", in: "VmRSS:\t12 MB\n", wantErr: true},
	{name: "not a number", in: "VmRSS:\tx kB\n", wantErr: true},
	{name: "negative", in: "VmRSS:\t-1 kB\n", wantErr: true},
}

func TestParseStatusRSS(t *testing.T) {
	for _, tt := range statusCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusRSS([]byte(tt.in))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

var statCases = []struct {
	name    string
	in      string
	want    int64
	wantErr bool
}{
	{name: "typical", in: "1234 (hc-agent) S 1 1234 1234 0 -1 4194560 500 0 0 0 25 17 0 0 20 0 8 0 100 1000000 3000 18446744073709551615\n", want: 42},
	{name: "spaces and parens in name", in: "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1\n", want: 7},
	{name: "too short", in: "1 (x) S 1 2 3\n", wantErr: true},
	{name: "no name", in: "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13\n", wantErr: true},
	{name: "bad number", in: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 4 0\n", wantErr: true},
}

func TestParseStatCPU(t *testing.T) {
	for _, tt := range statCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPU([]byte(tt.in))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseStatusRSS checks that parsing never panics and that a parsed
// value, printed as a status line, parses to the same value.
func FuzzParseStatusRSS(f *testing.F) {
	for _, tt := range statusCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := ParseStatusRSS([]byte(in))
		if err != nil {
			return
		}
		again, err := ParseStatusRSS(fmt.Appendf(nil, "VmRSS:\t%d kB\n", v/1024))
		if err != nil || again != v {
			t.Fatalf("ParseStatusRSS(%q) = %d, reparse = %d, %v", in, v, again, err)
		}
	})
}

// FuzzParseStatCPU checks that parsing never panics and that a parsed sum,
// printed as a stat line, parses to the same sum.
func FuzzParseStatCPU(f *testing.F) {
	for _, tt := range statCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := ParseStatCPU([]byte(in))
		if err != nil {
			return
		}
		again, err := ParseStatCPU(fmt.Appendf(nil, "1 (x) S 1 1 1 0 -1 0 0 0 0 0 %d 0 0 0\n", v))
		if err != nil || again != v {
			t.Fatalf("ParseStatCPU(%q) = %d, reparse = %d, %v", in, v, again, err)
		}
	})
}

var switchCases = []struct {
	name    string
	in      string
	want    int64
	wantErr bool
}{
	{name: "typical", in: "Name:\thc-agent\nVmRSS:\t12 kB\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t3\n", want: 123},
	{name: "zero", in: "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0", want: 0},
	{name: "one line missing", in: "voluntary_ctxt_switches:\t5\n", wantErr: true},
	{name: "none", in: "Name:\tx\n", wantErr: true},
	{name: "not a number", in: "voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t1\n", wantErr: true},
	{name: "negative", in: "voluntary_ctxt_switches:\t-4\nnonvoluntary_ctxt_switches:\t1\n", wantErr: true},
}

func TestParseStatusSwitches(t *testing.T) {
	for _, tt := range switchCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusSwitches([]byte(tt.in))
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// FuzzParseStatusSwitches checks that parsing never panics and that a
// parsed sum, printed as the two lines, parses to the same sum.
func FuzzParseStatusSwitches(f *testing.F) {
	for _, tt := range switchCases {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := ParseStatusSwitches([]byte(in))
		if err != nil {
			return
		}
		again, err := ParseStatusSwitches(fmt.Appendf(nil, "voluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t0\n", v))
		if err != nil || again != v {
			t.Fatalf("ParseStatusSwitches(%q) = %d, reparse = %d, %v", in, v, again, err)
		}
	})
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, s.RSS)
	assert.Positive(t, s.Switches)
	assert.Positive(t, s.RSSAnon)
	assert.LessOrEqual(t, s.RSSAnon, s.RSS)
	_, err = ReadProc(-1)
	assert.Error(t, err)
}

func TestMeasure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The fake process grows by 1 MiB and uses 5 ticks per reading.
		var n int64
		read := func() (Sample, error) {
			n++
			return Sample{RSS: n << 20, RSSAnon: n << 19, CPUTicks: 5 * n, Switches: 30 * n}, nil
		}
		got, err := Measure(t.Context(), read, 10*time.Second, time.Second, RealClock{})
		require.NoError(t, err)
		want := Result{Window: 10 * time.Second, RSSMax: 11 << 20, RSSLast: 11 << 20, RSSAnonMax: 11 << 19, CPUSeconds: 0.5, CPUPercent: 5, Wakeups: 30, Samples: 11}
		assert.Equal(t, want, got)
	})
}

func TestMeasureErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("gone")
		calls := 0
		read := func() (Sample, error) {
			calls++
			if calls == 3 {
				return Sample{}, boom
			}
			return Sample{}, nil
		}
		_, err := Measure(t.Context(), read, time.Minute, time.Second, RealClock{})
		assert.ErrorIs(t, err, boom)

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = Measure(ctx, func() (Sample, error) { return Sample{}, nil }, time.Minute, time.Second, RealClock{})
		assert.ErrorIs(t, err, context.Canceled)
	})
}

func TestBinarySize(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tiny\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644))
	size, err := BinarySize(t.Context(), goTool, dir, ".")
	require.NoError(t, err)
	assert.Greater(t, size, int64(100<<10))
	assert.Less(t, size, int64(10<<20))

	_, err = BinarySize(t.Context(), goTool, dir, "./missing")
	assert.Error(t, err)
}
