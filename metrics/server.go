package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultListen is the listener address used when the configuration has
// none: loopback only, because /status tells who holds which floating IP.
const DefaultListen = "127.0.0.1:9183"

// Handler serves /metrics from g, /healthz from health (200 "ok" when it
// returns nil, 503 with the error text otherwise) and /status as the JSON
// encoding of what status returns. Either func may be nil.
func Handler(g prometheus.Gatherer, health func() error, status func() any) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if health != nil {
			if err := health(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		var v any = struct{}{}
		if status != nil {
			v = status()
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			http.Error(w, "encode status: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(b, '\n'))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "hc-agent: /metrics /healthz /status")
	})
	return mux
}

// Server is the metrics, /healthz and /status listener.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// Listen binds addr (DefaultListen when empty) and returns a Server that
// serves h once Serve is called. Binding early lets the caller fail fast on
// a busy port.
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	return &Server{
		ln:  ln,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
		log: log,
	}, nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is done, then shuts down gracefully within a
// second. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	// This goroutine exits when the listener is closed by Shutdown or fails.
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("metrics listener started", "addr", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shut down metrics listener on %s: %w", s.ln.Addr(), err)
	}
	return nil
}
