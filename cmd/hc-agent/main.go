// Command hc-agent is the in-server agent for Hetzner Cloud: it configures
// private networks and floating IPs from the metadata service and moves
// floating IPs between the servers of a failover group.
//
// Run "hc-agent --help" for the commands. commands.go holds the command
// table; each command lives in its own cmd_*.go file.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Set at build time by the Makefile:
// go build -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	tuneRuntime(os.Getenv)
	setTimerSlack("/proc", timerSlack)
	stopProfile := startCPUProfile(os.Getenv, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}

// run executes the command line args (without the program name) and returns
// the process exit code: 0 success, 1 runtime error, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return execute(ctx, newEnv(stdout, stderr, os.Getenv), args)
}
