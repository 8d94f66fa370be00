// Package cloudapitest is a stateful simulator of the subset of the Hetzner
// Cloud API that hc-agent uses: floating IPs, their actions, global actions,
// servers with their private networks' alias IPs (change_alias_ips), and
// networks with their routes (add_route, delete_route; see networks.go). It follows the API reference: bearer-token auth, error bodies
// with code, message and details, pagination with meta and a Link header,
// name and label_selector filters, sort, asynchronous actions, locked
// resources, a token-bucket rate limit with the RateLimit headers and 429,
// and fault injection for tests.
//
// The JSON bodies use the structs of hcloud-go's schema package so the
// official client round-trips exactly.
package cloudapitest

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// Server describes a simulated server. ID 0 means "allocate one".
type Server struct {
	ID          int64
	Name        string
	Status      string // default "running"
	PublicIPv4  netip.Addr
	PublicIPv6  netip.Prefix
	PrivateNets []PrivateNet
	Labels      map[string]string
	Location    string // default "fsn1"
}

// PrivateNet is a server's attachment to a private network.
type PrivateNet struct {
	NetworkID  int64
	IP         netip.Addr
	AliasIPs   []netip.Addr
	MACAddress string
}

// FloatingIP describes a simulated floating IP. ID 0 means "allocate one".
// Type is derived from Prefix when empty.
type FloatingIP struct {
	ID           int64
	Name         string
	Description  string
	Type         string       // "ipv4" or "ipv6"
	Prefix       netip.Prefix // /32 for IPv4, /64 for IPv6
	ServerID     int64        // 0 = unassigned
	Labels       map[string]string
	HomeLocation string // default "fsn1"
	Blocked      bool
}

// RequestRecord is one entry of the request log. It carries no token.
type RequestRecord struct {
	Method string
	Path   string // without the prefix, e.g. /floating_ips/1/actions/assign
	Query  string
	Status int // 0 when the connection was dropped
}

// AssignFunc is told where a floating IP is routed after an assign or
// unassign action succeeded; serverID 0 means unrouted.
type AssignFunc func(floatingIPID, serverID int64, ip netip.Prefix)

// Option configures a Sim.
type Option func(*Sim)

// WithTokens sets the accepted API tokens. Without it any non-empty bearer
// token is accepted.
func WithTokens(tokens ...string) Option {
	return func(s *Sim) {
		for _, t := range tokens {
			s.tokens[t] = true
		}
	}
}

// WithActionDelay sets how long actions stay "running" before they end in
// "success" (or "error", see FailActions). With the default of 0 an action
// has already succeeded in the response that starts it.
func WithActionDelay(d time.Duration) Option { return func(s *Sim) { s.actionDelay = d } }

// WithReadOnlyTokens adds tokens that may only make GET requests; anything
// else answers 403 forbidden, as the API does for read-only tokens.
func WithReadOnlyTokens(tokens ...string) Option {
	return func(s *Sim) {
		for _, t := range tokens {
			s.tokens[t] = true
			s.readOnly[t] = true
		}
	}
}

// WithClock sets the clock. Action completion and the rate limit follow it;
// with a clock that is not time.Now, call Settle after moving it. Under
// testing/synctest the default time.Now is already virtual.
func WithClock(now func() time.Time) Option { return func(s *Sim) { s.now = now } }

// WithRateLimit sets the bucket: limit requests, refilled evenly over per
// (default 3600 per hour, that is one per second).
func WithRateLimit(limit int, per time.Duration) Option {
	return func(s *Sim) {
		s.limit = float64(limit)
		s.refill = float64(limit) / per.Seconds()
	}
}

// WithLogger sets the logger for request and state-change debug logs.
func WithLogger(l *slog.Logger) Option { return func(s *Sim) { s.log = l } }

// WithPrefix sets the path prefix the API is served under (default "/v1").
func WithPrefix(p string) Option { return func(s *Sim) { s.prefix = strings.TrimSuffix(p, "/") } }

// Sim is the simulated API. It implements http.Handler.
type Sim struct {
	// hookMu is held from finishing an assignment until its OnAssign hooks
	// returned, and taken by every request before it reads anything, so no
	// client sees an assign action succeed before the cloud routes the
	// address (the real API's order). Lock order: hookMu, then mu.
	hookMu      sync.Mutex
	mu          sync.Mutex
	now         func() time.Time
	log         *slog.Logger
	prefix      string
	tokens      map[string]bool
	readOnly    map[string]bool
	actionDelay time.Duration
	latency     time.Duration

	limit, refill, bucket float64
	bucketAt              time.Time

	nextID   int64
	servers  map[int64]*Server
	fips     map[int64]*fipState
	actions  map[int64]*actionState
	onAssign []AssignFunc
	timers   map[*time.Timer]struct{}

	// Private networks (networks.go).
	networks    map[int64]*networkState
	serverBusy  map[int64]int64 // server ID -> running change_alias_ips action
	onAliasIPs  []AliasIPsFunc
	onRoutes    []RoutesFunc
	sharedAlias bool

	faults         []*fault
	failActions    int
	dropConns      int
	requests       map[string]int
	requestLog     []RequestRecord
	created        time.Time
	nextV4, nextV6 int
	mux            *http.ServeMux
}

type fipState struct {
	FloatingIP
	created time.Time
	running int64 // ID of the running action, 0 if none
}

type actionState struct {
	schema.Action
	due     time.Time
	delay   time.Duration
	fail    bool
	fipID   int64
	target  int64 // server for assign, 0 for unassign
	settled bool
	// release frees the resources the action locks (servers, networks);
	// apply makes a successful action's change and returns the hook calls
	// to make after unlocking. Both are nil for floating IP actions.
	release func()
	apply   func() []func()
	alias   *aliasChange // pending change_alias_ips, nil otherwise
}

type fault struct {
	method, pattern string
	status          int
	code            string
	n               int
}

// New returns a simulator with no servers and no floating IPs.
func New(opts ...Option) *Sim {
	s := &Sim{
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
		prefix:   "/v1",
		tokens:   map[string]bool{},
		readOnly: map[string]bool{},
		limit:    3600,
		refill:   1,
		servers:  map[int64]*Server{},
		fips:     map[int64]*fipState{},
		actions:  map[int64]*actionState{},
		timers:   map[*time.Timer]struct{}{},
		requests: map[string]int{},
		nextID:   1000,

		networks:   map[int64]*networkState{},
		serverBusy: map[int64]int64{},
	}
	for _, o := range opts {
		o(s)
	}
	s.bucket = s.limit
	s.bucketAt = s.now()
	s.created = s.now().UTC().Truncate(time.Second)
	s.routes()
	return s
}

// Close stops pending action timers. Actions still settle lazily on the next
// request.
func (s *Sim) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.timers {
		t.Stop()
	}
	clear(s.timers)
}

func (s *Sim) id() int64 {
	s.nextID++
	return s.nextID
}

// AddServer adds a server and returns its ID.
func (s *Sim) AddServer(srv Server) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv.ID == 0 {
		srv.ID = s.id()
	}
	if srv.Name == "" {
		srv.Name = fmt.Sprintf("server-%d", srv.ID)
	}
	if srv.Status == "" {
		srv.Status = "running"
	}
	if srv.Location == "" {
		srv.Location = "fsn1"
	}
	srv.Labels = cloneLabels(srv.Labels)
	s.servers[srv.ID] = &srv
	return srv.ID
}

// SetServerStatus changes a server's status, e.g. to "off".
func (s *Sim) SetServerStatus(id int64, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv, ok := s.servers[id]; ok {
		srv.Status = status
	}
}

// SetServerLabels replaces a server's labels.
func (s *Sim) SetServerLabels(id int64, labels map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv, ok := s.servers[id]; ok {
		srv.Labels = cloneLabels(labels)
	}
}

// AddFloatingIP adds a floating IP and returns its ID. A zero Prefix gets an
// address from a documentation range (198.51.100.0/24, 203.0.113.0/24, or
// 2001:db8:f:N::/64). It does not call the OnAssign hooks: the caller sets
// up the initial routing itself.
func (s *Sim) AddFloatingIP(f FloatingIP) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addFloatingIPLocked(f)
}

func (s *Sim) addFloatingIPLocked(f FloatingIP) int64 {
	if f.ID == 0 {
		f.ID = s.id()
	}
	if f.Type == "" {
		f.Type = "ipv4"
		if f.Prefix.IsValid() && f.Prefix.Addr().Is6() {
			f.Type = "ipv6"
		}
	}
	if !f.Prefix.IsValid() {
		f.Prefix = s.allocPrefix(f.Type)
	}
	if f.Name == "" {
		f.Name = fmt.Sprintf("floating-ip-%d", f.ID)
	}
	if f.HomeLocation == "" {
		f.HomeLocation = "fsn1"
	}
	f.Labels = cloneLabels(f.Labels)
	s.fips[f.ID] = &fipState{FloatingIP: f, created: s.now().UTC().Truncate(time.Second)}
	return f.ID
}

func (s *Sim) allocPrefix(typ string) netip.Prefix {
	if typ == "ipv6" {
		s.nextV6++
		return netip.MustParsePrefix(fmt.Sprintf("2001:db8:f:%x::/64", s.nextV6))
	}
	// Documentation ranges only (TEST-NET-2, then TEST-NET-3): 508
	// addresses, then they repeat.
	n := s.nextV4 % 508
	s.nextV4++
	if n < 254 {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(n + 1)}), 32)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(n - 254 + 1)}), 32)
}

// FloatingIP returns a snapshot of a floating IP.
func (s *Sim) FloatingIP(id int64) (FloatingIP, bool) {
	s.settle()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fips[id]
	if !ok {
		return FloatingIP{}, false
	}
	out := f.FloatingIP
	out.Labels = cloneLabels(out.Labels)
	return out, true
}

// OnAssign registers a hook that is called, outside the simulator's lock,
// whenever an assign or unassign action succeeds (that is when the cloud
// routes the address) and when an assigned floating IP is deleted.
// Requests wait until the hooks returned, so a client that sees the action
// succeed sees the new route too. A hook must not call the Sim.
func (s *Sim) OnAssign(fn AssignFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAssign = append(s.onAssign, fn)
}

// SetActionDelay sets how long new actions stay running.
func (s *Sim) SetActionDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actionDelay = d
}

// SetLatency delays every response by d.
func (s *Sim) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// FailNext makes the next n requests whose path (without prefix) matches
// pattern fail with status and an error body with code. The pattern is a
// path.Match pattern, optionally preceded by a method and a blank, e.g.
// "POST /floating_ips/*/actions/assign".
func (s *Sim) FailNext(pattern string, status int, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &fault{pattern: pattern, status: status, code: code, n: n}
	if m, p, ok := strings.Cut(pattern, " "); ok {
		f.method, f.pattern = m, p
	}
	s.faults = append(s.faults, f)
}

// FailActions makes the next n actions end in status "error" with code
// "action_failed".
func (s *Sim) FailActions(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failActions = n
}

// DropConnections makes the next n requests close the connection without a
// response.
func (s *Sim) DropConnections(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropConns = n
}

// SetRateLimitRemaining sets the current number of requests left in the
// bucket, e.g. to test behaviour with a low budget.
func (s *Sim) SetRateLimitRemaining(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bucket = float64(n)
	s.bucketAt = s.now()
}

// Requests returns how many requests were made with token (including
// rejected ones).
func (s *Sim) Requests(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[token]
}

// RequestLog returns a copy of all requests so far.
func (s *Sim) RequestLog() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RequestRecord(nil), s.requestLog...)
}

// Settle finishes every action whose time has come. Requests do this
// themselves; call it after moving an injected clock.
func (s *Sim) Settle() { s.settle() }

func (s *Sim) settle() {
	s.hookMu.Lock()
	defer s.hookMu.Unlock()
	s.mu.Lock()
	calls := s.settleLocked()
	s.mu.Unlock()
	for _, c := range calls {
		c()
	}
}

// settleLocked finishes due actions in ID order and returns the hook calls
// to make after unlocking.
func (s *Sim) settleLocked() []func() {
	now := s.now()
	var due []*actionState
	for _, a := range s.actions {
		if !a.settled && !now.Before(a.due) {
			due = append(due, a)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].ID < due[j].ID })
	var calls []func()
	for _, a := range due {
		calls = append(calls, s.finishLocked(a)...)
	}
	return calls
}

func (s *Sim) finishLocked(a *actionState) []func() {
	a.settled = true
	fin := a.due.UTC().Truncate(time.Second)
	a.Finished = &fin
	a.Progress = 100
	f := s.fips[a.fipID]
	if f != nil && f.running == a.ID {
		f.running = 0
	}
	if a.release != nil {
		a.release()
	}
	if a.fail {
		a.Status = "error"
		a.Error = &schema.ActionError{Code: "action_failed", Message: "Action failed"}
		return nil
	}
	a.Status = "success"
	if a.apply != nil {
		return a.apply()
	}
	if f == nil || (a.Command != "assign_floating_ip" && a.Command != "unassign_floating_ip") {
		return nil
	}
	f.ServerID = a.target
	s.log.Debug("floating ip routed", "floating_ip", f.ID, "server", a.target)
	id, srv, p := f.ID, a.target, f.Prefix
	var calls []func()
	for _, fn := range s.onAssign {
		calls = append(calls, func() { fn(id, srv, p) })
	}
	return calls
}

// startActionLocked creates an action on a floating IP.
func (s *Sim) startActionLocked(command string, f *fipState, target int64, resources []schema.ActionResourceReference) *actionState {
	return s.newActionLocked(command, f, target, resources, s.actionDelay, true)
}

// newActionLocked creates an action that finishes after delay; mayFail says
// whether FailActions applies to it.
func (s *Sim) newActionLocked(command string, f *fipState, target int64, resources []schema.ActionResourceReference, delay time.Duration, mayFail bool) *actionState {
	now := s.now()
	a := &actionState{
		Action: schema.Action{
			ID:        s.id(),
			Status:    "running",
			Command:   command,
			Started:   now.UTC().Truncate(time.Second),
			Resources: resources,
		},
		due:    now.Add(delay),
		delay:  delay,
		target: target,
	}
	if f != nil {
		a.fipID = f.ID
	}
	if mayFail && s.failActions > 0 {
		s.failActions--
		a.fail = true
	}
	s.actions[a.ID] = a
	if f != nil {
		f.running = a.ID
	}
	if delay > 0 {
		var t *time.Timer
		t = time.AfterFunc(delay, func() {
			s.mu.Lock()
			delete(s.timers, t)
			s.mu.Unlock()
			s.settle()
		})
		s.timers[t] = struct{}{}
	}
	return a
}

// actionJSONLocked renders an action with progress for running ones.
func (s *Sim) actionJSONLocked(a *actionState) schema.Action {
	out := a.Action
	if !a.settled && a.delay > 0 {
		p := int(100 * s.now().Sub(a.Started).Seconds() / a.delay.Seconds())
		out.Progress = min(max(p, 0), 99)
	}
	out.Resources = append([]schema.ActionResourceReference{}, a.Resources...)
	return out
}

// ServeHTTP implements http.Handler.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, s.prefix)
	if !ok || (p != "" && p[0] != '/') {
		s.writeError(w, http.StatusNotFound, "not_found", "not found", nil)
		return
	}
	if p == "" {
		p = "/"
	}
	token, hasToken := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !hasToken {
		token = ""
	}

	s.mu.Lock()
	s.requests[token]++
	rec := RequestRecord{Method: r.Method, Path: p, Query: r.URL.RawQuery}
	latency := s.latency
	drop := s.dropConns > 0
	if drop {
		s.dropConns--
	}
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
		case <-t.C:
		}
	}
	if drop {
		s.logRequest(rec)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	s.settle()

	sw := &statusWriter{ResponseWriter: w}
	s.serve(sw, r, p, token)
	rec.Status = sw.status
	s.logRequest(rec)
}

func (s *Sim) logRequest(rec RequestRecord) {
	s.mu.Lock()
	s.requestLog = append(s.requestLog, rec)
	s.mu.Unlock()
	s.log.Debug("request", "method", rec.Method, "path", rec.Path, "status", rec.Status)
}

func (s *Sim) serve(w http.ResponseWriter, r *http.Request, p, token string) {
	s.mu.Lock()
	limited := !s.takeTokenLocked()
	s.rateHeadersLocked(w.Header())
	var injected *fault
	if !limited {
		for _, f := range s.faults {
			if f.n <= 0 || (f.method != "" && f.method != r.Method) {
				continue
			}
			if ok, _ := path.Match(f.pattern, p); ok {
				f.n--
				injected = f
				break
			}
		}
	}
	authorized := token != "" && (len(s.tokens) == 0 || s.tokens[token])
	readOnly := s.readOnly[token] && r.Method != http.MethodGet
	s.mu.Unlock()

	switch {
	case limited:
		s.writeError(w, http.StatusTooManyRequests, "rate_limit_exceeded", "limit of requests per hour reached", nil)
	case !authorized:
		s.writeError(w, http.StatusUnauthorized, "unauthorized", "unable to authenticate", nil)
	case readOnly:
		s.writeError(w, http.StatusForbidden, "forbidden", "token is read-only", nil)
	case injected != nil:
		s.writeError(w, injected.status, injected.code, "injected fault: "+injected.code, nil)
	default:
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		s.mux.ServeHTTP(w, r2)
	}
}

// takeTokenLocked refills the bucket and takes one request from it.
func (s *Sim) takeTokenLocked() bool {
	now := s.now()
	if el := now.Sub(s.bucketAt).Seconds(); el > 0 {
		s.bucket = math.Min(s.limit, s.bucket+el*s.refill)
	}
	s.bucketAt = now
	if s.bucket < 1 {
		return false
	}
	s.bucket--
	return true
}

func (s *Sim) rateHeadersLocked(h http.Header) {
	remaining := math.Floor(s.bucket)
	// Reset is when the bucket is full again, rounded up to a whole second.
	missing := time.Duration((s.limit - s.bucket) / s.refill * float64(time.Second))
	resetAt := s.bucketAt.Add(max(missing, 0))
	reset := resetAt.Unix()
	if resetAt.After(time.Unix(reset, 0)) {
		reset++
	}
	h.Set("RateLimit-Limit", strconv.Itoa(int(s.limit)))
	h.Set("RateLimit-Remaining", strconv.Itoa(int(remaining)))
	h.Set("RateLimit-Reset", strconv.FormatInt(reset, 10))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func cloneLabels(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Sim) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details any    `json:"details"`
	} `json:"error"`
}

func (s *Sim) writeError(w http.ResponseWriter, status int, code, msg string, details any) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.Error.Details = code, msg, details
	if details == nil {
		b.Error.Details = struct{}{}
	}
	s.writeJSON(w, status, b)
}

func invalidField(name, msg string) any {
	type field struct {
		Name     string   `json:"name"`
		Messages []string `json:"messages"`
	}
	return map[string]any{"fields": []field{{Name: name, Messages: []string{msg}}}}
}

func (s *Sim) invalidInput(w http.ResponseWriter, field, msg string) {
	s.writeError(w, http.StatusBadRequest, "invalid_input", fmt.Sprintf("invalid input in field '%s': %s", field, msg), invalidField(field, msg))
}
