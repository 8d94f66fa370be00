package stackdump

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGoroutines(t *testing.T) {
	dump := "goroutine 1 [running]:\nmain.main()\n\t/x/main.go:3 +0x1\n\n" +
		"goroutine 17 [select, 2 minutes]:\nagent.loop()\n\t/x/a.go:9 +0x2\ncreated by agent.Run\n\n" +
		"garbage\n\ngoroutine x [idle]:\n\ngoroutine 5\n"
	got := goroutines([]byte(dump))
	var ids []uint64
	for _, g := range got {
		ids = append(ids, g.id)
	}
	assert.Equal(t, []uint64{1, 17}, ids)
	assert.Equal(t, "goroutine 17 [select, 2 minutes]:\nagent.loop()\n\t/x/a.go:9 +0x2\ncreated by agent.Run", string(got[1].stack))
}

//go:noinline
func stuckLoop(block <-chan struct{}, started chan<- struct{}, d *Dumper) {
	defer d.Track("reconcile")()
	started <- struct{}{}
	<-block
}

//go:noinline
func idleWorker(block <-chan struct{}, running *sync.WaitGroup) {
	running.Done()
	<-block
}

// startGoroutines starts n idle workers and one tracked stuck loop; they
// exit when the test ends.
func startGoroutines(t testing.TB, d *Dumper, n int) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	var running sync.WaitGroup
	running.Add(n)
	for range n {
		go idleWorker(block, &running)
	}
	running.Wait()
	started := make(chan struct{})
	go stuckLoop(block, started, d)
	<-started
}

func TestDumpPrintsOnlyTrackedGoroutines(t *testing.T) {
	d := New()
	startGoroutines(t, d, 30)
	var buf bytes.Buffer
	require.Equal(t, 1, d.Dump(&buf))
	out := buf.String()
	assert.True(t, strings.HasPrefix(out, "stack of reconcile loop:\ngoroutine "), out)
	assert.Contains(t, out, "stackdump.stuckLoop")
	assert.NotContains(t, out, "idleWorker")
	assert.Less(t, strings.Count(out, "\n"), 20, out)

	untrack := d.Track("test")
	buf.Reset()
	require.Equal(t, 2, d.Dump(&buf))
	assert.Contains(t, buf.String(), "stack of test loop:")
	untrack()
	buf.Reset()
	assert.Equal(t, 1, d.Dump(&buf))

	var nilDumper *Dumper
	nilDumper.Track("x")()
}

// childEnv selects the helper process mode of TestWatchdogSignal.
const childEnv = "HCAGENT_STACKDUMP_CHILD"

// TestMain runs the helper process: 200 idle goroutines (about what
// hc-agent has), a tracked loop stuck forever, and, in mode "dumper", a
// Dumper on SIGABRT. It prints "ready" once set up.
func TestMain(m *testing.M) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		os.Exit(m.Run())
	}
	d := New()
	block := make(chan struct{})
	// Every worker runs (is blocked in idleWorker) before "ready": the
	// runtime's dump shows them there.
	var running sync.WaitGroup
	running.Add(200)
	for range 200 {
		go idleWorker(block, &running)
	}
	running.Wait()
	started := make(chan struct{})
	go stuckLoop(block, started, d)
	<-started
	if mode == "dumper" {
		d.Watch(context.Background(), slog.New(slog.NewTextHandler(os.Stderr, nil)), os.Stderr, os.Exit, WatchdogSignal)
	}
	os.Stdout.WriteString("ready\n")
	select {}
}

// TestWatchdogSignal sends SIGABRT, as systemd's watchdog does, to a
// process with 200 goroutines: without a Dumper the runtime prints all of
// them; with one, the journal gets one log line and the stuck loop's stack.
func TestWatchdogSignal(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	lines := map[string]int{}
	for _, mode := range []string{"runtime", "dumper"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+mode, "GOTRACEBACK=none")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			line, err := bufio.NewReader(stdout).ReadString('\n')
			require.NoError(t, err, "child did not start: %s", stderr.String())
			require.Equal(t, "ready\n", line)
			require.NoError(t, cmd.Process.Signal(syscall.SIGABRT))
			err = cmd.Wait()
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "exit: %v", err)
			assert.Equal(t, ExitCode, ee.ExitCode())
			out := stderr.String()
			lines[mode] = strings.Count(out, "\n")
			t.Logf("%s: %d lines on stderr", mode, lines[mode])
			assert.Contains(t, out, "stackdump.stuckLoop")
			if mode == "dumper" {
				assert.Contains(t, out, "watchdog signal")
				assert.NotContains(t, out, "idleWorker")
				assert.Less(t, lines[mode], 20, out)
			} else {
				assert.Contains(t, out, "idleWorker", "the runtime's dump has every goroutine")
			}
		})
	}
}
