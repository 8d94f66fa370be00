package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// cpuProfileEnv names the environment variable that makes the process
// write a CPU profile to the path it holds, from start to exit, and an
// allocation profile (every 4 KiB allocated is sampled) to the same path
// with ".allocs" appended. It is for
// measuring the idle cost of the daemon (issue 14: `hc-bench --profile`
// sets it) and is read here in main only; it is not a configuration key.
//
//	HC_AGENT_CPUPROFILE=/tmp/agent.pprof hc-agent run
//	go tool pprof -top /tmp/agent.pprof
//	go tool pprof -sample_index=alloc_space -top /tmp/agent.pprof.allocs
const cpuProfileEnv = "HC_AGENT_CPUPROFILE"

// startCPUProfile starts the CPU profile that getenv(cpuProfileEnv) asks
// for and returns the function that writes it out; without the variable
// it does nothing. A profile that cannot start is reported on stderr and
// the command runs anyway.
func startCPUProfile(getenv func(string) string, stderr io.Writer) (stop func()) {
	path := getenv(cpuProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "hc-agent: start cpu profile %s: %v\n", path, err)
		return func() {}
	}
	// Sample allocations finely: an idle agent allocates little, and the
	// default rate (one sample per 512 KiB) would see next to nothing.
	runtime.MemProfileRate = 4 << 10
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(stderr, "hc-agent: start cpu profile %s: %v\n", path, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "hc-agent: write cpu profile %s: %v\n", path, err)
		}
		if err := writeAllocs(path + ".allocs"); err != nil {
			fmt.Fprintf(stderr, "hc-agent: %v\n", err)
		}
	}
}

func writeAllocs(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write allocation profile %s: %w", path, err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write allocation profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write allocation profile %s: %w", path, err)
	}
	return nil
}
