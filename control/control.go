// Package control is the daemon's local control socket: `hc-agent
// handover`, `handover --resume`, `status` and `reload` talk to the running
// daemon through a Unix socket in runtime_dir, not through the metrics
// listener, which may listen on the network.
//
// The protocol is HTTP/1.1 over the socket with JSON bodies (curl
// --unix-socket works for debugging):
//
//	GET  /v1/status            the status document
//	POST /v1/handover          {"groups":[...]} hand over and stay out
//	POST /v1/resume            {"groups":[...]} take part again
//	POST /v1/reload            re-read the configuration
//
// An empty group list means every group. A refused request answers 4xx or
// 5xx with {"error":"..."}. The socket is mode 0600 and the server also
// checks the peer's credentials: only root (uid 0) is served.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// SocketName is the socket's file name in runtime_dir.
const SocketName = "control.sock"

// Path returns the socket path in runtimeDir.
func Path(runtimeDir string) string { return filepath.Join(runtimeDir, SocketName) }

// Daemon is what the control socket asks of the running daemon.
type Daemon interface {
	// Status returns the status document (JSON-encodable).
	Status(ctx context.Context) any
	// Handover hands the IPs of groups (all when empty) to a healthy peer
	// and keeps this member out of candidacy until Resume or a restart.
	Handover(ctx context.Context, groups []string) error
	// Resume makes this member a candidate again in groups (all when empty).
	Resume(ctx context.Context, groups []string) error
	// Reload re-reads the configuration; an error means the new one was
	// refused and the running one stays.
	Reload(ctx context.Context) error
}

// NotFoundError is returned by a Daemon for a group it does not run; the
// socket answers 404 for it.
type NotFoundError struct{ Group string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("no group %q", e.Group) }

// groupsRequest is the body of handover and resume.
type groupsRequest struct {
	Groups []string `json:"groups"`
}

// errorBody is the body of every refused request.
type errorBody struct {
	Error string `json:"error"`
}

// maxBody bounds what the server reads from a request.
const maxBody = 64 << 10

// Handler serves the protocol for d.
func Handler(d Daemon) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Status(r.Context()))
	})
	groupsOp := func(op func(context.Context, []string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req groupsRequest
			if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
				writeJSON(w, http.StatusBadRequest, errorBody{Error: "decode request: " + err.Error()})
				return
			}
			writeResult(w, op(r.Context(), req.Groups))
		}
	}
	mux.HandleFunc("POST /v1/handover", groupsOp(d.Handover))
	mux.HandleFunc("POST /v1/resume", groupsOp(d.Resume))
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		writeResult(w, d.Reload(r.Context()))
	})
	return mux
}

func writeResult(w http.ResponseWriter, err error) {
	var nf *NotFoundError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, struct{}{})
	case errors.As(err, &nf):
		writeJSON(w, http.StatusNotFound, errorBody{Error: err.Error()})
	default:
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// Server serves the control socket.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
}

// Listen creates the socket at path (mode 0600) for d. A stale socket left
// by a crashed daemon is replaced; one that a running daemon answers on is
// an error, as is any other file at path. The socket's directory
// (runtime_dir) is created with mode 0750, as the unit's RuntimeDirectory=
// does, when the daemon runs outside systemd.
func Listen(path string, d Daemon, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create runtime dir %s: %w", filepath.Dir(path), err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	// The umask makes the socket 0600 from the start, so that there is no
	// window in which it is open to others; the chmod is for a umask that
	// was laxer still (umask is process-wide, but this runs at start-up).
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod control socket %s: %w", path, err)
	}
	return &Server{
		path: path,
		ln:   &rootOnly{Listener: ln, log: log},
		srv:  &http.Server{Handler: Handler(d), ReadHeaderTimeout: 5 * time.Second},
		log:  log,
	}, nil
}

// removeStale removes a socket at path that nothing answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat control socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another hc-agent answers on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale control socket %s: %w", path, err)
	}
	return nil
}

// Serve serves until ctx is done, then closes the socket and removes it.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	// This goroutine exits when Shutdown closes the listener.
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("control socket listening", "path", s.path)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		err = s.srv.Shutdown(sctx)
		cancel()
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve control socket %s: %w", s.path, err)
	}
	return nil
}

// rootOnly accepts connections from uid 0 only (SO_PEERCRED): the socket's
// mode already says so, this also holds when the directory or the mode was
// changed by hand.
type rootOnly struct {
	net.Listener
	log *slog.Logger
}

func (l *rootOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && uid == 0 {
			return c, nil
		}
		l.log.Warn("control socket: refused a connection that is not from root", "uid", uid, "err", err)
		c.Close()
	}
}
