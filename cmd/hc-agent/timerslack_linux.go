package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// timerSlack is how late the kernel may end a timed sleep of hc-agent's
// threads so that it can batch the wakeup with others (prctl
// PR_SET_TIMERSLACK; the default is 50 µs). The Go runtime's sysmon
// thread sleeps 20 µs at a time while any goroutine runs and is woken by
// every timer and by the first system call after an idle spell; with the
// default slack it looped five or six times through each of an idle
// group member's twenty-odd bursts of work a second, 70 % of the
// process's context switches (issue 14: a perf trace of sched_switch).
// With 1 ms it sleeps once per burst: wakeups fell from ~205 to ~85 a
// second and CPU by a quarter. Nothing hc-agent times is that fine: the
// netpoller already rounds its timeouts to milliseconds, and failure
// detection works in steps of a probe interval (180 ms).
//
// The systemd unit sets the same with TimerSlackNSec= for every thread
// from exec on; setTimerSlack does it for runs outside systemd.
const timerSlack = time.Millisecond

// setTimerSlack raises the timer slack of every thread of this process to
// slack, through proc's TID/timerslack_ns files (Linux 4.6). A thread
// inherits its creator's slack, so later threads get it too. Writing
// another thread's value needs CAP_SYS_NICE; without it (the systemd unit
// keeps only CAP_NET_ADMIN, and has set TimerSlackNSec= itself) the
// threads keep what they have. It reports how many threads it changed.
// Threads that already have at least slack are left alone.
func setTimerSlack(proc string, slack time.Duration) int {
	changed := 0
	seen := map[string]bool{}
	// Threads started while the first pass ran may have copied an old
	// value: a second pass finds them.
	for range 2 {
		ents, err := os.ReadDir(filepath.Join(proc, "self", "task"))
		if err != nil {
			return changed
		}
		for _, e := range ents {
			tid := e.Name()
			if seen[tid] {
				continue
			}
			seen[tid] = true
			path := filepath.Join(proc, tid, "timerslack_ns")
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			if cur, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && cur >= slack.Nanoseconds() {
				continue
			}
			if os.WriteFile(path, []byte(strconv.FormatInt(slack.Nanoseconds(), 10)), 0) == nil {
				changed++
			}
		}
	}
	return changed
}
