package main

import (
	"runtime"
)

// limitProcs runs Go code on one OS thread at a time unless the
// environment sets GOMAXPROCS (the runtime reads it itself). hc-agent is
// idle nearly all the time and wakes a few dozen times a second for
// failure detection; with more than one P every wakeup also wakes a
// second, spinning thread that finds nothing to do. One P cut an idle group
// member's context switches by about a third (issue 14: 200 to 135 per
// second on two cores). Nothing hc-agent does needs two cores: its work is
// waiting for the network, netlink and the API.
func limitProcs(getenv func(string) string) {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
