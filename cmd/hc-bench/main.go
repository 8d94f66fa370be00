// Command hc-bench measures hc-agent against the usual keepalived + notify
// script setup on the simulated cloud and prints a table (and writes JSON):
// failover and hand-over outages, boot and hotplug times, steady-state API
// use and the idle footprint. `make bench` runs it as root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

func main() {
	// The simulated cloud re-executes this binary for its helper programs
	// (the name service); this returns at once otherwise.
	simcloud.RunHelper()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hc-bench:", err)
		os.Exit(1)
	}
}

// options are the command-line settings of one run.
type options struct {
	trials   int
	quick    bool
	jsonPath string
	only     []string
	src      string // module directory, for building hc-agent
	goTool   string
	agentBin string // prebuilt hc-agent; empty builds one
	keep     bool   // keep the scratch directory (configs, logs)
	profile  string // directory for the footprint agents' CPU profiles
	// noBaseline skips keepalived in the outage sections (tuning runs).
	noBaseline bool
	log        *slog.Logger
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("hc-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var only, level string
	fs.IntVar(&o.trials, "trials", 20, "trials per outage measurement")
	fs.BoolVar(&o.quick, "quick", false, "short run: 5 trials, 10 s footprint window, 20 s API window (figures not for comparison)")
	fs.StringVar(&o.jsonPath, "json", "bench-results/results.json", "write the results as JSON to this path (\"\" to skip)")
	fs.StringVar(&only, "only", "", "comma-separated sections to run: "+strings.Join(sectionIDs(), ","))
	fs.StringVar(&o.src, "src", ".", "hc-agent module directory (to build ./cmd/hc-agent)")
	fs.StringVar(&o.goTool, "go", "go", "go tool used to build hc-agent")
	fs.StringVar(&o.agentBin, "agent", "", "use this hc-agent binary instead of building one")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory with every config and log, and print its path")
	fs.BoolVar(&o.noBaseline, "no-baseline", false, "skip the keepalived baseline in the outage sections (for tuning runs; no ratios)")
	fs.StringVar(&o.profile, "profile", "", "write a CPU profile of each footprint agent to this directory (SERVER.pprof)")
	fs.StringVar(&level, "log-level", "warn", "harness log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.quick && !isSet(fs, "trials") {
		o.trials = 5
	}
	if o.trials < 1 {
		return options{}, fmt.Errorf("--trials %d: need at least 1", o.trials)
	}
	if only != "" {
		for _, id := range strings.Split(only, ",") {
			id = strings.TrimSpace(id)
			if !slices.Contains(sectionIDs(), id) {
				return options{}, fmt.Errorf("--only: unknown section %q (have %s)", id, strings.Join(sectionIDs(), ","))
			}
			o.only = append(o.only, id)
		}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return options{}, fmt.Errorf("--log-level %q: %w", level, err)
	}
	o.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	return o, nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	rep := &bench.Report{
		Started: time.Now(),
		Trials:  o.trials,
		Quick:   o.quick,
		Host:    bench.Host{Kernel: kernelRelease(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version()},
	}
	h, err := newHarness(ctx, o)
	if err != nil {
		return err
	}
	defer h.close()
	for _, s := range sections {
		if len(o.only) > 0 && !slices.Contains(o.only, s.id) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		o.log.Info("section start", "section", s.id)
		start := time.Now()
		sec := s.run(ctx, h)
		sec.ID, sec.Title = s.id, s.title
		o.log.Info("section done", "section", s.id, "duration", time.Since(start).Round(time.Millisecond))
		rep.Sections = append(rep.Sections, sec)
	}
	rep.Finished = time.Now()
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if o.jsonPath != "" {
		if err := rep.WriteJSON(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nresults written to %s\n", o.jsonPath)
	}
	return ctx.Err()
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
