package simcloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Environment of the helper programs. A process started with helperEnv set
// runs a helper instead of its own main (see RunHelper).
const (
	helperEnv       = "SIMCLOUD_HELPER"
	helperListenEnv = "SIMCLOUD_LISTEN"
	helperNameEnv   = "SIMCLOUD_NAME"
	helperServeName = "serve-name"
)

// RunHelper runs one of this package's helper programs and exits when the
// process was started as one (by Server.StartNameService); otherwise it
// returns at once. Call it first thing in main and in TestMain of every
// package that starts name services:
//
//	func TestMain(m *testing.M) {
//		simcloud.RunHelper()
//		os.Exit(m.Run())
//	}
//
// Helpers are re-executions of the current binary, so they work the same
// in `go test` binaries and in hc-demo, with nothing to install.
func RunHelper() {
	switch os.Getenv(helperEnv) {
	case "":
		return
	case helperServeName:
		if err := serveName(os.Getenv(helperListenEnv), os.Getenv(helperNameEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "serve-name:", err)
			os.Exit(1)
		}
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// NameHandler answers every request with the name and a newline: the HTTP
// service whose answers show which server a floating IP reaches.
func NameHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, name)
	})
}

// serveName serves NameHandler on addr (IPv4 and IPv6) until SIGTERM or
// SIGINT.
func serveName(addr, name string) error {
	if addr == "" {
		addr = ":80"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: NameHandler(name), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	// The goroutine exits when the server is shut down.
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down server on %s: %w", addr, err)
	}
	return nil
}
