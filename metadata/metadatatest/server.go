// Package metadatatest provides a fake Hetzner Cloud metadata service for
// tests: per-test content, injectable status codes, delays and malformed
// bodies, and a log of the requests it received. Its private-networks
// document can follow the API simulator's alias changes with a lag
// (FollowAliasIPs, SetAliasLag), as the real service does.
//
// A Server is reachable two ways: over a real loopback socket (New, URL) and
// in memory (Transport), which serves requests by calling the handler
// directly. The in-memory path does no network I/O, so a client that uses it
// runs entirely inside a testing/synctest bubble, and injected delays use the
// bubble's fake clock.
package metadatatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hc-agent/hc-agent/metadata"
)

// BasePath is the path of the summary document; every key is a sub-path.
const BasePath = "/hetzner/v1/metadata"

// Hangup is a pseudo status for SetStatus: the server drops the connection
// without answering, which the client sees as a transport error.
const Hangup = -1

// Request is one request the server received, logged on arrival (before any
// injected delay).
type Request struct {
	Method string
	Path   string // URL path, e.g. /hetzner/v1/metadata/hostname
	Key    string // metadata key, "" for the summary (and for paths outside BasePath)
	Header http.Header
	Time   time.Time
}

type injection struct {
	code  int
	times int // < 0: forever
}

type entry struct {
	body string
	code int // 200 or 204
}

// Server is a fake metadata service. It is safe for concurrent use.
type Server struct {
	mu         sync.Mutex
	content    map[string]entry
	summaryFor map[string]bool // keys last written by SetSummary
	status     map[string]*injection
	delay      map[string]time.Duration
	requests   []Request
	changed    chan struct{} // closed and replaced on every request
	// pns is the private-networks document last set with
	// SetPrivateNetworks, which SetAliasIPs edits; aliasLag delays those
	// edits (aliases.go).
	pns       []metadata.PrivateNetwork
	aliasLag  time.Duration
	timers    map[*time.Timer]struct{}
	closed    chan struct{}
	closeOnce sync.Once
	srv       *httptest.Server
}

// New starts a Server on a loopback port and closes it when the test ends.
// It starts with every documented key answering 204 (no content) and every
// other key answering 404.
func New(t testing.TB) *Server {
	t.Helper()
	s := NewUnstarted()
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

// NewUnstarted returns a Server that listens nowhere: use it as an
// http.Handler (for example in a simulated cloud) or through Transport.
func NewUnstarted() *Server {
	s := &Server{
		content:    make(map[string]entry),
		summaryFor: make(map[string]bool),
		status:     make(map[string]*injection),
		delay:      make(map[string]time.Duration),
		changed:    make(chan struct{}),
		closed:     make(chan struct{}),
		timers:     make(map[*time.Timer]struct{}),
	}
	s.content[""] = entry{code: http.StatusNoContent}
	for _, k := range metadata.Keys() {
		s.content[k] = entry{code: http.StatusNoContent}
	}
	return s
}

// Close stops the listener (if any) and releases delayed handlers.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	for t := range s.timers {
		t.Stop()
	}
	clear(s.timers)
	s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
	}
}

// URL returns the endpoint base, e.g. http://127.0.0.1:NNN/hetzner/v1/metadata,
// or "" for an unstarted Server.
func (s *Server) URL() string {
	if s.srv == nil {
		return ""
	}
	return s.srv.URL + BasePath
}

// InMemoryURL is the endpoint to use with Transport. Its host is never
// dialled: the transport ignores it.
const InMemoryURL = "http://metadata.invalid" + BasePath

// Client returns an http.Client that reaches s in memory; pass it to
// metadata.WithHTTPClient together with metadata.WithEndpoint(InMemoryURL).
func (s *Server) Client() *http.Client { return &http.Client{Transport: s.Transport()} }

// SetSummary sets the summary document and the sub-paths it implies
// (hostname, instance-id, public-ipv4, availability-zone, region, and one per
// Extra key), replacing what an earlier SetSummary set. Zero values answer
// 204. It panics if MarshalSummary rejects s: that is a bug in the test.
func (s *Server) SetSummary(sum metadata.Summary) {
	doc, err := metadata.MarshalSummary(sum)
	if err != nil {
		panic(fmt.Sprintf("metadatatest: SetSummary: %v", err))
	}
	sub := map[string]string{
		metadata.KeyHostname:         sum.Hostname,
		metadata.KeyAvailabilityZone: sum.AvailabilityZone,
		metadata.KeyRegion:           sum.Region,
		metadata.KeyInstanceID:       "",
		metadata.KeyPublicIPv4:       "",
	}
	if sum.InstanceID != 0 {
		sub[metadata.KeyInstanceID] = strconv.FormatInt(sum.InstanceID, 10)
	}
	if sum.PublicIPv4.IsValid() {
		sub[metadata.KeyPublicIPv4] = sum.PublicIPv4.String()
	}
	for k, v := range sum.Extra {
		sub[k] = renderValue(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.summaryFor {
		if _, ok := sub[k]; !ok {
			delete(s.content, k)
		}
	}
	s.summaryFor = make(map[string]bool, len(sub))
	s.content[""] = textEntry(string(doc))
	for k, v := range sub {
		s.content[k] = textEntry(v)
		s.summaryFor[k] = true
	}
}

// renderValue renders an Extra value for its own sub-path: strings as text,
// everything else as YAML.
func renderValue(v any) string {
	if str, ok := v.(string); ok {
		return str
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("metadatatest: render %T: %v", v, err))
	}
	_ = enc.Close()
	return buf.String()
}

// textEntry answers 204 for an empty value, like the real service.
func textEntry(body string) entry {
	if body == "" {
		return entry{code: http.StatusNoContent}
	}
	return entry{body: body, code: http.StatusOK}
}

// SetPrivateNetworks sets the private-networks document; an empty slice
// answers 204. It panics if MarshalPrivateNetworks rejects pns.
func (s *Server) SetPrivateNetworks(pns []metadata.PrivateNetwork) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setPrivateNetworksLocked(metadata.ClonePrivateNetworks(pns))
}

func (s *Server) setPrivateNetworksLocked(pns []metadata.PrivateNetwork) {
	body := ""
	if len(pns) > 0 {
		b, err := metadata.MarshalPrivateNetworks(pns)
		if err != nil {
			panic(fmt.Sprintf("metadatatest: SetPrivateNetworks: %v", err))
		}
		body = string(b)
	}
	s.pns = pns
	s.content[metadata.KeyPrivateNetworks] = textEntry(body)
}

// SetRaw makes key answer 200 with exactly body (even when body is empty),
// for malformed or unusual documents. Key "" is the summary.
func (s *Server) SetRaw(key, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.content[key] = entry{body: body, code: http.StatusOK}
}

// Delete makes key answer 404.
func (s *Server) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.content, key)
}

// SetStatus makes the next times requests for key answer code instead of the
// content (times < 0: until changed; times 0: clear). A 2xx code other than
// 204 serves the content with that code; 3xx adds a Location header pointing
// at the summary; Hangup drops the connection. Other codes send the status
// text as body.
func (s *Server) SetStatus(key string, code, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if times == 0 {
		delete(s.status, key)
		return
	}
	s.status[key] = &injection{code: code, times: times}
}

// SetDelay delays every answer for key by d (0 clears). The delay ends early
// when the client gives up.
func (s *Server) SetDelay(key string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delay, key)
		return
	}
	s.delay[key] = d
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// WaitRequests blocks until at least n requests have arrived or ctx ends.
func (s *Server) WaitRequests(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, ch := len(s.requests), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d metadata requests (have %d): %w", n, got, ctx.Err())
		}
	}
}

// keyOf maps a URL path to a metadata key; ok is false outside BasePath.
func keyOf(path string) (key string, ok bool) {
	rest, found := strings.CutPrefix(path, BasePath)
	if !found {
		return "", false
	}
	if rest == "" || rest == "/" {
		return "", true
	}
	if rest[0] != '/' {
		return "", false
	}
	return rest[1:], true
}

// ServeHTTP answers like the metadata service, applying injections.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, ok := keyOf(r.URL.Path)
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Key: key, Header: r.Header.Clone(), Time: time.Now(),
	})
	close(s.changed)
	s.changed = make(chan struct{})
	delay := s.delay[key]
	code := 0
	if inj := s.status[key]; inj != nil && ok {
		code = inj.code
		if inj.times > 0 {
			inj.times--
			if inj.times == 0 {
				delete(s.status, key)
			}
		}
	}
	e, found := s.content[key]
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
			return
		}
	}
	switch {
	case !ok:
		http.NotFound(w, r)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case code == Hangup:
		// net/http's server closes the connection without an answer and
		// without logging; Transport turns it into an error.
		panic(http.ErrAbortHandler)
	case code >= 300 && code < 400:
		w.Header().Set("Location", BasePath)
		w.WriteHeader(code)
		return
	case code != 0 && (code < 200 || code >= 300):
		http.Error(w, http.StatusText(code), code)
		return
	case !found:
		http.NotFound(w, r)
		return
	}
	if code == 0 {
		code = e.code
	}
	if code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(e.body)))
	w.WriteHeader(code)
	if r.Method == http.MethodGet {
		_, _ = w.Write([]byte(e.body))
	}
}

// Transport returns an http.RoundTripper that serves every request with s's
// handler in memory, whatever the URL's host. A Hangup becomes an error, and
// a request whose context ends gets the context's error, like a real
// transport.
func (s *Server) Transport() http.RoundTripper { return roundTripper{s} }

type roundTripper struct{ s *Server }

// errHangup is what the in-memory transport returns for a dropped connection.
var errHangup = errors.New("metadatatest: connection closed without answer")

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	// The goroutine exits when the handler returns; injected delays end
	// early when req's context ends.
	go func() {
		rec := httptest.NewRecorder()
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
					panic(v)
				}
				done <- result{err: errHangup}
			}
		}()
		rt.s.ServeHTTP(rec, req)
		resp := rec.Result()
		resp.Request = req
		done <- result{resp: resp}
	}()
	select {
	case r := <-done:
		if r.err == nil && req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return r.resp, r.err
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}
