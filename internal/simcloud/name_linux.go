package simcloud

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// StartNameService starts an HTTP service on port (all addresses, IPv4 and
// IPv6) inside the server's namespace that answers every request with the
// server's name. It runs as a separate process (a re-execution of the
// current binary, see RunHelper), so Crash kills it and Pause freezes it.
// It returns once the port accepts connections.
func (s *Server) StartNameService(ctx context.Context, port int) (*Proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start name service on %s: find own executable: %w", s.name, err)
	}
	env := []string{
		helperEnv + "=" + helperServeName,
		helperListenEnv + "=:" + strconv.Itoa(port),
		helperNameEnv + "=" + s.name,
	}
	// The service outlives ctx (it runs until Close or Kill); ctx only
	// bounds the wait for readiness.
	// -test.run=^$ makes a test binary whose TestMain forgot RunHelper
	// exit at once instead of running its tests inside the server; a
	// program that calls RunHelper first never sees the flag.
	argv := []string{exe, "-test.run=^$"}
	p, err := s.Start(context.WithoutCancel(ctx), "name-service", argv, env)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var conn net.Conn
		derr := s.ns.do(func() error {
			var err error
			conn, err = net.DialTimeout("tcp", addr, time.Second)
			return err
		})
		if derr == nil {
			conn.Close()
			return p, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("start name service on %s: exited (does main or TestMain call simcloud.RunHelper first?): %v: %s", s.name, p.Wait(), p.Output())
		case <-ctx.Done():
			_ = p.Kill()
			return nil, fmt.Errorf("start name service on %s: wait for port %d: %w", s.name, port, ctx.Err())
		case <-tick.C:
		}
	}
}
