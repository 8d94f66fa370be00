// Package stackdump keeps a watchdog kill readable. When systemd's watchdog
// fires it sends WatchdogSignal (SIGABRT by default), and the Go runtime
// answers a fatal signal with the stack of every goroutine: about 280
// journal lines for hc-agent, in which the one loop that stopped pinging is
// hard to find. (GOTRACEBACK does not help: with Go 1.26, even
// GOTRACEBACK=none prints every goroutine on SIGABRT.) A Dumper catches the
// signal instead and prints only the goroutines that registered with Track,
// the loops that ping the watchdog, then exits.
//
// SIGQUIT is left alone: `kill -QUIT` still gives the runtime's full dump
// for debugging.
package stackdump

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// ExitCode is what the process exits with after a dump: 2, as the Go
// runtime does after a fatal signal.
const ExitCode = 2

// Dumper prints the stacks of tracked goroutines.
type Dumper struct {
	mu      sync.Mutex
	tracked map[uint64]string // goroutine id -> name
}

// New returns a Dumper that tracks nothing yet.
func New() *Dumper { return &Dumper{tracked: map[uint64]string{}} }

// Track registers the calling goroutine under name until the returned func
// is called. Call it at the top of each loop that pings the watchdog:
//
//	defer d.Track("reconcile")()
//
// A nil Dumper tracks nothing.
func (d *Dumper) Track(name string) (untrack func()) {
	if d == nil {
		return func() {}
	}
	id := currentID()
	d.mu.Lock()
	d.tracked[id] = name
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		delete(d.tracked, id)
		d.mu.Unlock()
	}
}

// Dump writes the stack of every tracked goroutine to w, each under a line
// naming it, and returns how many it found.
func (d *Dumper) Dump(w io.Writer) int {
	d.mu.Lock()
	names := make(map[uint64]string, len(d.tracked))
	for id, n := range d.tracked {
		names[id] = n
	}
	d.mu.Unlock()
	found := 0
	for _, g := range goroutines(allStacks()) {
		name, ok := names[g.id]
		if !ok {
			continue
		}
		found++
		fmt.Fprintf(w, "stack of %s loop:\n%s\n", name, bytes.TrimRight(g.stack, "\n"))
	}
	return found
}

// Watch catches sig (the unit's WatchdogSignal) from now on, until ctx is
// done. On the signal it logs one error, writes the tracked stacks to w
// (stderr, so the journal keeps them as plain lines) and calls exit with
// ExitCode; exit is os.Exit in the daemon. The signal handler is installed
// before Watch returns; its goroutine exits when ctx is done or after exit.
func (d *Dumper) Watch(ctx context.Context, log *slog.Logger, w io.Writer, exit func(int), sig os.Signal) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		defer signal.Stop(ch)
		select {
		case <-ctx.Done():
			return
		case s := <-ch:
			d.mu.Lock()
			n := len(d.tracked)
			d.mu.Unlock()
			log.Error("watchdog signal: a loop stopped pinging the watchdog; printing the stacks of the tracked loops and exiting",
				"signal", s.String(), "loops", n)
			d.Dump(w)
			exit(ExitCode)
		}
	}()
}

// WatchdogSignal is the signal systemd sends on a watchdog timeout unless
// the unit sets WatchdogSignal=.
var WatchdogSignal os.Signal = syscall.SIGABRT

type goroutine struct {
	id    uint64
	stack []byte
}

// allStacks returns runtime.Stack of all goroutines, growing the buffer
// until it fits.
func allStacks() []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutines splits a runtime.Stack dump: blocks separated by an empty line,
// each starting "goroutine ID [state]:".
func goroutines(dump []byte) []goroutine {
	var out []goroutine
	for _, block := range bytes.Split(dump, []byte("\n\n")) {
		if id, ok := parseID(block); ok {
			out = append(out, goroutine{id: id, stack: block})
		}
	}
	return out
}

func parseID(block []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(block, []byte("goroutine "))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, ' ')
	if i <= 0 {
		return 0, false
	}
	id, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	return id, err == nil
}

// currentID is the calling goroutine's id, read from its own stack header.
func currentID() uint64 {
	var buf [64]byte
	id, _ := parseID(buf[:runtime.Stack(buf[:], false)])
	return id
}
