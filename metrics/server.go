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
	"github.com/prometheus/exporter-toolkit/web"
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
	ln        net.Listener
	srv       *http.Server
	log       *slog.Logger
	webConfig string
}

// ServerOption configures Listen.
type ServerOption func(*Server)

// WithWebConfigFile serves with TLS and/or basic auth as the web
// configuration file at path says: the format of
// github.com/prometheus/exporter-toolkit that node_exporter's
// --web.config.file reads (tls_server_config, basic_auth_users with bcrypt
// hashes, http_server_config). The file is read again for every new TLS
// connection and every authentication, so renewed certificates and changed
// users apply without a restart. An empty path serves plain HTTP.
func WithWebConfigFile(path string) ServerOption {
	return func(s *Server) { s.webConfig = path }
}

// Listen binds addr (DefaultListen when empty) and returns a Server that
// serves h once Serve is called. Binding early lets the caller fail fast on
// a busy port, and a web configuration file that does not load (see
// WithWebConfigFile) fails here for the same reason.
func Listen(addr string, h http.Handler, log *slog.Logger, opts ...ServerOption) (*Server, error) {
	if addr == "" {
		addr = DefaultListen
	}
	s := &Server{
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute},
		log: log,
	}
	for _, o := range opts {
		o(s)
	}
	if err := ValidateWebConfig(s.webConfig); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	s.ln = ln
	return s, nil
}

// ValidateWebConfig loads the web configuration file at path and the
// certificates it names, as Listen does; "" is valid (plain HTTP). It is for
// check-config and reload, which must refuse a file that would not serve.
func ValidateWebConfig(path string) error {
	if path == "" {
		return nil
	}
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("load metrics web config %s: %w", path, err)
	}
	return nil
}

// Addr is the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is done, then shuts down gracefully within a
// second. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	// exporter-toolkit logs "Listening on" and whether TLS is on at Info;
	// those lines repeat ours, so it gets them at Debug.
	tkLog := slog.New(levelShift{s.log.Handler()})
	flags := &web.FlagConfig{WebConfigFile: &s.webConfig}
	// This goroutine exits when the listener is closed by Shutdown or fails.
	go func() { errc <- web.Serve(s.ln, s.srv, flags, tkLog) }()
	s.log.Info("metrics listener started", "addr", s.ln.Addr().String(), "web_config_file", s.webConfig)
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

// levelShift lowers Info records to Debug; Warn and Error stay as they are.
type levelShift struct{ slog.Handler }

func (h levelShift) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, shift(l))
}

func (h levelShift) Handle(ctx context.Context, r slog.Record) error {
	r.Level = shift(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h levelShift) WithAttrs(as []slog.Attr) slog.Handler {
	return levelShift{h.Handler.WithAttrs(as)}
}

func (h levelShift) WithGroup(name string) slog.Handler {
	return levelShift{h.Handler.WithGroup(name)}
}

func shift(l slog.Level) slog.Level {
	if l == slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
