// Package footprint measures what an idle process costs: resident memory
// from /proc/PID/status, CPU time from /proc/PID/stat over a window, and the
// size of a stripped build of a binary.
package footprint

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// UserHZ is the unit of utime and stime in /proc/PID/stat. The kernel
// exports these in USER_HZ, which is 100 on every architecture Linux
// exposes to userspace, whatever the kernel's internal HZ.
const UserHZ = 100

// Sample is one reading of a process.
type Sample struct {
	RSS int64 // resident set size in bytes (VmRSS)
	// RSSAnon is the anonymous part of RSS (heap, stacks; RssAnon); the
	// rest is mostly pages of the binary, shared with the page cache.
	RSSAnon  int64
	CPUTicks int64 // utime+stime of all threads, in 1/UserHZ seconds
	// Switches is the sum over all threads of voluntary and involuntary
	// context switches: an idle process is switched in once per wakeup,
	// so its rate is the wakeups per second.
	Switches int64
}

// Result is the footprint of a process over a window.
type Result struct {
	Window  time.Duration `json:"window_ns"`
	RSSMax  int64         `json:"rss_max_bytes"`
	RSSLast int64         `json:"rss_last_bytes"`
	// RSSAnonMax is the peak of the anonymous part of RSS.
	RSSAnonMax int64   `json:"rss_anon_max_bytes"`
	CPUSeconds float64 `json:"cpu_seconds"` // over Window
	CPUPercent float64 `json:"cpu_percent"` // of one core, averaged over Window
	// Wakeups is context switches per second over Window (all threads).
	Wakeups float64 `json:"wakeups_per_second"`
	Samples int     `json:"samples"`
}

// ReadProc reads a Sample of pid from /proc.
func ReadProc(pid int) (Sample, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	rss, err := ParseStatusRSS(status)
	if err != nil {
		return Sample{}, fmt.Errorf("parse status of pid %d: %w", pid, err)
	}
	anon, err := parseStatusKB(status, "RssAnon:")
	if err != nil {
		return Sample{}, fmt.Errorf("parse status of pid %d: %w", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Sample{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	ticks, err := ParseStatCPU(stat)
	if err != nil {
		return Sample{}, fmt.Errorf("parse stat of pid %d: %w", pid, err)
	}
	sw, err := readSwitches(pid)
	if err != nil {
		return Sample{}, err
	}
	return Sample{RSS: rss, RSSAnon: anon, CPUTicks: ticks, Switches: sw}, nil
}

// readSwitches sums the context switches of every thread of pid. A thread
// that exits between the listing and the read is skipped: its switches
// leave the sum, which undercounts a window by at most that thread's.
func readSwitches(pid int) (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("list threads of pid %d: %w", pid, err)
	}
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue
		}
		n, err := ParseStatusSwitches(b)
		if err != nil {
			return 0, fmt.Errorf("parse status of thread %s of pid %d: %w", e.Name(), pid, err)
		}
		sum += n
	}
	return sum, nil
}

// ParseStatusSwitches returns voluntary_ctxt_switches plus
// nonvoluntary_ctxt_switches from the text of /proc/PID/task/TID/status.
func ParseStatusSwitches(status []byte) (int64, error) {
	var sum int64
	found := 0
	for line := range bytes.Lines(status) {
		var rest []byte
		var ok bool
		if rest, ok = bytes.CutPrefix(line, []byte("voluntary_ctxt_switches:")); !ok {
			if rest, ok = bytes.CutPrefix(line, []byte("nonvoluntary_ctxt_switches:")); !ok {
				continue
			}
		}
		v, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("parse context switches %q: not a non-negative number", bytes.TrimSpace(line))
		}
		sum += v
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("parse status: %d context switch lines, want 2", found)
	}
	return sum, nil
}

// ParseStatusRSS returns VmRSS from the text of /proc/PID/status, in bytes.
func ParseStatusRSS(status []byte) (int64, error) {
	return parseStatusKB(status, "VmRSS:")
}

// parseStatusKB returns the "<n> kB" value of key (with its colon) from the
// text of /proc/PID/status, in bytes.
func parseStatusKB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse %s line %q: want \"<n> kB\"", key, bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("parse %s value %q: out of range or not a number", key, f[0])
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("parse status: no %s line (kernel thread or zombie)", key)
}

// ParseStatCPU returns utime+stime (fields 14 and 15) from the text of
// /proc/PID/stat. The command name in field 2 may contain spaces and
// parentheses, so fields are counted after its last closing parenthesis.
func ParseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields after the command name, want at least 13", len(f))
	}
	var sum int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("parse stat cpu time %q: not a non-negative number", s)
		}
		sum += v
	}
	return sum, nil
}

// Clock is the time source of Measure.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Measure samples a process with read every interval for window and returns
// its peak and last resident memory and the CPU it used in the window.
func Measure(ctx context.Context, read func() (Sample, error), window, interval time.Duration, clock Clock) (Result, error) {
	first, err := read()
	if err != nil {
		return Result{}, fmt.Errorf("measure footprint: %w", err)
	}
	start := clock.Now()
	res := Result{RSSMax: first.RSS, RSSLast: first.RSS, RSSAnonMax: first.RSSAnon, Samples: 1}
	last := first
	for {
		elapsed := clock.Now().Sub(start)
		if elapsed >= window {
			break
		}
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("measure footprint: %w", ctx.Err())
		case <-clock.After(min(interval, window-elapsed)):
		}
		s, err := read()
		if err != nil {
			return Result{}, fmt.Errorf("measure footprint: %w", err)
		}
		last = s
		res.Samples++
		res.RSSLast = s.RSS
		res.RSSMax = max(res.RSSMax, s.RSS)
		res.RSSAnonMax = max(res.RSSAnonMax, s.RSSAnon)
	}
	res.Window = clock.Now().Sub(start)
	res.CPUSeconds = float64(last.CPUTicks-first.CPUTicks) / UserHZ
	if res.Window > 0 {
		res.CPUPercent = 100 * res.CPUSeconds / res.Window.Seconds()
		res.Wakeups = float64(last.Switches-first.Switches) / res.Window.Seconds()
	}
	return res, nil
}

// Build builds pkg (e.g. ./cmd/hc-agent) in module directory dir the way
// releases are built (CGO_ENABLED=0, -trimpath, -ldflags "-s -w") and
// writes the binary to out.
func Build(ctx context.Context, goTool, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w: %s", pkg, err, bytes.TrimSpace(b))
	}
	return nil
}

// BinarySize builds pkg like Build into a temporary directory and returns
// the size of the result in bytes.
func BinarySize(ctx context.Context, goTool, dir, pkg string) (int64, error) {
	tmp, err := os.MkdirTemp("", "hc-bench-build-")
	if err != nil {
		return 0, fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	if err := Build(ctx, goTool, dir, pkg, out); err != nil {
		return 0, err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("stat build of %s: %w", pkg, err)
	}
	return fi.Size(), nil
}
