package main

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hc-agent/hc-agent/memtrim"
)

// gcPercent is hc-agent's GOGC. The Go heap never aims below 4 MiB × GOGC
// / 100, and an idle agent's live heap is about 1.3 MiB, so with the
// default 100 its heap filled up to 4 MiB of mostly garbage between
// collections. At 50 the heap stays under about 2.5 MiB: the anonymous part
// of an idle group member's RSS fell from ~7.2 to ~5.5 MiB (issue 14,
// hc-bench footprint, together with the start-up trim), for a collection
// every ~15 s instead of every ~35 s — its CPU is lost in the noise of a
// 60 s measurement (±0.05 %). 25 kept no more memory off.
const gcPercent = 50

// tuneRuntime sets hc-agent's runtime settings, each unless the
// environment sets it (the runtime reads those itself):
//
//   - GOMAXPROCS 1. hc-agent is idle nearly all the time and wakes a few
//     dozen times a second for failure detection; with more than one P
//     every wakeup also wakes a second, spinning thread that finds nothing
//     to do. One P cut an idle group member's context switches by about a
//     third (issue 14: 200 to 135 per second on two cores). Nothing
//     hc-agent does needs two cores: its work is waiting for the network,
//     netlink and the API.
//   - GOGC gcPercent.
//   - No heap profile (runtime.MemProfileRate 0, unless GODEBUG sets
//     memprofilerate). hc-agent serves no profiles, but the runtime
//     samples an allocation every 512 KiB for one anyway, hashing each
//     sample's stack into a 1.4 MiB table and keeping a record per
//     distinct stack: ~0.3 MiB of an idle group member's RSS (issue 14:
//     RssAnon 5.54 → 5.21 MiB, same moment of the bench's footprint run).
//     Package initialisation has taken a sample or two by the time main
//     runs, so the table exists, but nothing touches it again.
//     HC_AGENT_CPUPROFILE turns sampling back on (startCPUProfile).
func tuneRuntime(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if !godebugSets(getenv("GODEBUG"), "memprofilerate") {
		runtime.MemProfileRate = 0
	}
}

// godebugSets reports whether the GODEBUG value godebug sets key.
func godebugSets(godebug, key string) bool {
	for field := range strings.SplitSeq(godebug, ",") {
		if k, _, ok := strings.Cut(field, "="); ok && k == key {
			return true
		}
	}
	return false
}

// trimDelay is how long after READY=1 the daemon releases the memory that
// only its start-up used (memtrim.Trim): by then the groups have joined
// and read their floating IPs once, so what start-up ran is done.
const trimDelay = 20 * time.Second

// trimAfter runs memtrim.Trim once, delay from now, unless ctx ends first.
// It returns at once.
func trimAfter(ctx context.Context, log *slog.Logger, delay time.Duration) {
	go func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := memtrim.Trim()
		if err != nil {
			log.Warn("release start-up memory failed", "err", err)
			return
		}
		log.Debug("released start-up memory", "executable_segments", res.Segments, "executable_bytes", res.Bytes)
	}()
}
