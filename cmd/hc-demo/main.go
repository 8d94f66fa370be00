// Command hc-demo shows hc-agent at work in a simulated Hetzner Cloud made of
// network namespaces (package simcloud): three servers in one failover group
// share an IPv4 and an IPv6 floating IP, and a client measures what users
// see while servers boot, get a network hot-plugged, crash and shut down.
// It must run as root, and it tears everything down on exit, on Ctrl-C and
// on SIGTERM.
//
// Usage:
//
//	hc-demo [--agent bin/hc-agent] [--keep-going] [--verbose]
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
	"syscall"

	"github.com/hc-agent/hc-agent/internal/simcloud"
)

func main() {
	// When re-executed as a helper (the per-server name service), this
	// runs it and exits.
	simcloud.RunHelper()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hc-demo:", err)
		stop()
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	agent     string
	keepGoing bool
	verbose   bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hc-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.agent, "agent", "bin/hc-agent", "path to the hc-agent binary; \"\" runs only the steps that need no agent")
	fs.BoolVar(&o.keepGoing, "keep-going", false, "continue with the next step after a failed one")
	fs.BoolVar(&o.verbose, "verbose", false, "log what the simulated cloud does to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

// run parses the flags and runs the demo. Everything it builds is torn down
// before it returns, whatever happens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root: the simulated cloud is made of network namespaces")
	}
	log := slog.New(slog.DiscardHandler)
	if o.verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d := newDemo(stdout, o.keepGoing)
	err = scenario(ctx, d, o, log)
	d.summary()
	return err
}
