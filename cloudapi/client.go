// Package cloudapi is the narrow port to the Hetzner Cloud API that hc-agent
// needs: list and get floating IPs, assign and unassign them, wait for
// actions, and find servers by label. It is built on the official
// hcloud-go client, with hcloud-go's own retries turned off so that this
// package's Budget and retry policy are authoritative:
//
//   - locked, conflict, rate_limit_exceeded, 5xx and network errors are
//     retried with jittered exponential backoff until the retry deadline
//     (WithRetryDeadline) or the context's deadline, whichever is first;
//   - unauthorized, forbidden, invalid_input, not_found and every other API
//     error are returned at once as *Error.
//
// Errors never contain the API token.
package cloudapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hc-agent/hc-agent/internal/ipconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Defaults of the Client.
const (
	// DefaultRetryDeadline bounds the retries of one call.
	DefaultRetryDeadline = 30 * time.Second
	// DefaultPollInterval is how often WaitAction polls. An assign usually
	// finishes within one to three seconds; 250ms keeps failover fast at a
	// cost of a handful of requests per failover.
	DefaultPollInterval = 250 * time.Millisecond
	// DefaultActionTimeout bounds WaitAction when the context has no deadline.
	DefaultActionTimeout = 2 * time.Minute
)

// FloatingIP is a floating IP as the agent sees it.
type FloatingIP struct {
	ID   int64
	Name string
	Type string // "ipv4" or "ipv6"
	// IP is the IPv4 address, or for IPv6 the network's first address
	// (e.g. 2001:db8::, as the API reports it); hosts usually configure ::1.
	IP           netip.Addr
	Network      netip.Prefix // /32 for IPv4, /64 for IPv6
	ServerID     int64        // 0 = unassigned
	Labels       map[string]string
	HomeLocation string
	Blocked      bool
}

// Server is a server as the agent sees it (for group peers).
type Server struct {
	ID          int64
	Name        string
	Status      string
	PublicIPv4  netip.Addr
	PublicIPv6  netip.Prefix
	PrivateNets []PrivateNet
	Labels      map[string]string
}

// PrivateNet is a server's address in one private network.
type PrivateNet struct {
	NetworkID int64
	IP        netip.Addr
	AliasIPs  []netip.Addr
}

// Action is an asynchronous API action.
type Action struct {
	ID           int64
	Command      string
	Status       string // "running", "success" or "error"
	Progress     int
	ErrorCode    string
	ErrorMessage string
}

// Option configures a Client.
type Option func(*config)

type config struct {
	endpoint      string
	httpClient    *http.Client
	budget        *Budget
	log           *slog.Logger
	userAgent     string
	retryDeadline time.Duration
	pollInterval  time.Duration
}

// WithEndpoint sets the API endpoint (default https://api.hetzner.cloud/v1).
func WithEndpoint(url string) Option { return func(c *config) { c.endpoint = url } }

// WithHTTPClient sets the HTTP client whose transport and timeout are used;
// the client itself is not modified.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithBudget sets the process-wide budget (default: a private one).
func WithBudget(b *Budget) Option { return func(c *config) { c.budget = b } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithUserAgent sets the version that follows "hc-agent/" in the User-Agent.
func WithUserAgent(suffix string) Option { return func(c *config) { c.userAgent = suffix } }

// WithRetryDeadline bounds the retries of each call (default 30s).
func WithRetryDeadline(d time.Duration) Option { return func(c *config) { c.retryDeadline = d } }

// WithPollInterval sets how often WaitAction polls (default 250ms).
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.pollInterval = d } }

// Client is the port. It is safe for concurrent use.
type Client struct {
	hc            *hcloud.Client
	token         string
	budget        *Budget
	log           *slog.Logger
	retryDeadline time.Duration
	pollInterval  time.Duration

	mu sync.Mutex
	// done holds actions that Assign or Unassign saw already finished, so
	// that WaitAction on them costs no request.
	done map[int64]Action
}

// New returns a client that authenticates with token.
func New(token string, opts ...Option) *Client {
	cfg := config{
		endpoint:      hcloud.Endpoint,
		httpClient:    &http.Client{Timeout: 30 * time.Second},
		retryDeadline: DefaultRetryDeadline,
		pollInterval:  DefaultPollInterval,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.budget == nil {
		cfg.budget = NewBudget()
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	hc := *cfg.httpClient
	hc.Transport = cfg.budget.Transport(cfg.httpClient.Transport)
	// No redirects: the API does not use them, and following one could send
	// the token elsewhere.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		hc: hcloud.NewClient(
			hcloud.WithToken(token),
			hcloud.WithEndpoint(cfg.endpoint),
			hcloud.WithHTTPClient(&hc),
			hcloud.WithApplication("hc-agent", cfg.userAgent),
			// Our retry loop and Budget decide; hcloud-go must not retry.
			hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0, BackoffFunc: hcloud.ConstantBackoff(0)}),
		),
		token:         token,
		budget:        cfg.budget,
		log:           cfg.log,
		retryDeadline: cfg.retryDeadline,
		pollInterval:  cfg.pollInterval,
		done:          map[int64]Action{},
	}
}

// remember records an action that is already finished.
func (c *Client) remember(a Action) {
	if a.Status == string(hcloud.ActionStatusRunning) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.done) >= 64 { // callers that never wait must not grow it
		clear(c.done)
	}
	c.done[a.ID] = a
}

func (c *Client) recall(id int64) (Action, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.done[id]
	delete(c.done, id)
	return a, ok
}

// String describes the client without its token, so that printing a Client
// by accident cannot leak the secret.
func (c *Client) String() string { return "cloudapi.Client{token: [redacted]}" }

// LogValue implements slog.LogValuer with the token redacted.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Budget returns the client's budget.
func (c *Client) Budget() *Budget { return c.budget }

// retryable reports whether a failed call may succeed when repeated.
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		switch e.Code {
		case CodeLocked, CodeConflict, CodeRateLimitExceeded,
			"server_error", "service_error", "bad_gateway", "timeout", "unavailable":
			return true
		}
		return false
	}
	// ErrBudget and context errors end the call; any other failure is a
	// transport problem (dropped connection, timeout, 5xx without a JSON
	// body) and may succeed on a new attempt.
	return !errors.Is(err, ErrBudget) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond << min(attempt, 4) // 250ms .. 4s
	return d - time.Duration(rand.Int64N(int64(d)/5))
}

// call runs fn, retrying transient failures within the retry deadline.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.retryDeadline)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := c.convertError(op, fn(ctx))
		if err == nil {
			return nil
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		d := backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return err
		}
		c.log.Debug("retrying api call", "op", op, "attempt", attempt+1, "backoff", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// ListFloatingIPs returns every floating IP (all pages) that matches the
// label selector; an empty selector returns all. Non-urgent unless ctx is
// marked with WithUrgent.
func (c *Client) ListFloatingIPs(ctx context.Context, selector string) ([]FloatingIP, error) {
	var out []FloatingIP
	err := c.call(ctx, "list floating ips", func(ctx context.Context) error {
		fips, err := c.hc.FloatingIP.AllWithOpts(ctx, hcloud.FloatingIPListOpts{
			ListOpts: hcloud.ListOpts{LabelSelector: selector, PerPage: 50},
		})
		if err != nil {
			return err
		}
		out = make([]FloatingIP, 0, len(fips))
		for _, f := range fips {
			out = append(out, floatingIPFrom(f))
		}
		return nil
	})
	return out, err
}

// GetFloatingIP returns a floating IP by ID (if idOrName is numeric) or by
// name. A missing one is an *Error with code not_found. Urgent when ctx is
// marked with WithUrgent.
func (c *Client) GetFloatingIP(ctx context.Context, idOrName string) (FloatingIP, error) {
	op := "get floating ip " + strconv.Quote(idOrName)
	var out FloatingIP
	err := c.call(ctx, op, func(ctx context.Context) error {
		f, _, err := c.hc.FloatingIP.Get(ctx, idOrName)
		if err != nil {
			return err
		}
		if f == nil {
			return &Error{Op: op, Code: CodeNotFound, Message: "floating ip not found", Status: http.StatusNotFound}
		}
		out = floatingIPFrom(f)
		return nil
	})
	return out, err
}

// Assign starts moving a floating IP to a server. The move is done when the
// returned action succeeds (see WaitAction). Always urgent.
func (c *Client) Assign(ctx context.Context, floatingIPID, serverID int64) (Action, error) {
	return c.startAction(ctx, fmt.Sprintf("assign floating ip %d to server %d", floatingIPID, serverID), func(ctx context.Context) (*hcloud.Action, error) {
		a, _, err := c.hc.FloatingIP.Assign(ctx, &hcloud.FloatingIP{ID: floatingIPID}, &hcloud.Server{ID: serverID})
		return a, err
	})
}

// Unassign starts unassigning a floating IP. Always urgent.
func (c *Client) Unassign(ctx context.Context, floatingIPID int64) (Action, error) {
	return c.startAction(ctx, fmt.Sprintf("unassign floating ip %d", floatingIPID), func(ctx context.Context) (*hcloud.Action, error) {
		a, _, err := c.hc.FloatingIP.Unassign(ctx, &hcloud.FloatingIP{ID: floatingIPID})
		return a, err
	})
}

// startAction is an urgent call named op that starts an action with fn;
// the action is remembered for WaitAction.
func (c *Client) startAction(ctx context.Context, op string, fn func(context.Context) (*hcloud.Action, error)) (Action, error) {
	ctx = WithUrgent(ctx)
	var out Action
	err := c.call(ctx, op, func(ctx context.Context) error {
		a, err := fn(ctx)
		if err != nil {
			return err
		}
		out = actionFrom(a)
		c.remember(out)
		return nil
	})
	return out, err
}

// WaitAction polls an action until it is success (nil error) or error (an
// *Error with the action's code, e.g. action_failed), or until ctx ends
// (DefaultActionTimeout when ctx has no deadline). The first poll comes one
// poll interval after the call; an action that Assign or Unassign already
// saw finished costs no request. Always urgent.
func (c *Client) WaitAction(ctx context.Context, actionID int64) (Action, error) {
	op := fmt.Sprintf("wait for action %d", actionID)
	if a, ok := c.recall(actionID); ok {
		return a, c.actionResult(op, a)
	}
	ctx = WithUrgent(ctx)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultActionTimeout)
		defer cancel()
	}
	last := Action{ID: actionID, Status: string(hcloud.ActionStatusRunning)}
	for {
		t := time.NewTimer(c.pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, fmt.Errorf("%s: still %s: %w", op, last.Status, ctx.Err())
		case <-t.C:
		}
		err := c.call(ctx, op, func(ctx context.Context) error {
			a, _, err := c.hc.Action.GetByID(ctx, actionID)
			if err != nil {
				return err
			}
			if a == nil {
				return &Error{Op: op, Code: CodeNotFound, Message: "action not found", Status: http.StatusNotFound}
			}
			last = actionFrom(a)
			return nil
		})
		if err != nil {
			return last, err
		}
		if last.Status != string(hcloud.ActionStatusRunning) {
			return last, c.actionResult(op, last)
		}
	}
}

// actionResult is nil for a successful action and an *Error otherwise.
func (c *Client) actionResult(op string, a Action) error {
	if a.Status == string(hcloud.ActionStatusSuccess) {
		return nil
	}
	return &Error{Op: op, Code: a.ErrorCode, Message: c.redact(a.ErrorMessage), ActionID: a.ID}
}

// ListServers returns every server (all pages) that matches the label
// selector. Non-urgent unless ctx is marked with WithUrgent.
func (c *Client) ListServers(ctx context.Context, selector string) ([]Server, error) {
	var out []Server
	err := c.call(ctx, "list servers", func(ctx context.Context) error {
		srvs, err := c.hc.Server.AllWithOpts(ctx, hcloud.ServerListOpts{
			ListOpts: hcloud.ListOpts{LabelSelector: selector, PerPage: 50},
		})
		if err != nil {
			return err
		}
		out = make([]Server, 0, len(srvs))
		for _, s := range srvs {
			out = append(out, serverFrom(s))
		}
		return nil
	})
	return out, err
}

// GetServer returns a server by ID; a missing one is an *Error with code
// not_found.
func (c *Client) GetServer(ctx context.Context, id int64) (Server, error) {
	op := fmt.Sprintf("get server %d", id)
	var out Server
	err := c.call(ctx, op, func(ctx context.Context) error {
		s, _, err := c.hc.Server.GetByID(ctx, id)
		if err != nil {
			return err
		}
		if s == nil {
			return &Error{Op: op, Code: CodeNotFound, Message: "server not found", Status: http.StatusNotFound}
		}
		out = serverFrom(s)
		return nil
	})
	return out, err
}

func addrFrom(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

func prefixFrom(n *net.IPNet) netip.Prefix {
	p, _ := ipconv.Prefix(n)
	return p
}

func floatingIPFrom(f *hcloud.FloatingIP) FloatingIP {
	out := FloatingIP{
		ID:      f.ID,
		Name:    f.Name,
		Type:    string(f.Type),
		IP:      addrFrom(f.IP),
		Labels:  f.Labels,
		Blocked: f.Blocked,
	}
	if f.Type == hcloud.FloatingIPTypeIPv6 {
		out.Network = prefixFrom(f.Network)
	} else if out.IP.IsValid() {
		out.Network = netip.PrefixFrom(out.IP, 32)
	}
	if f.Server != nil {
		out.ServerID = f.Server.ID
	}
	if f.HomeLocation != nil {
		out.HomeLocation = f.HomeLocation.Name
	}
	return out
}

func serverFrom(s *hcloud.Server) Server {
	out := Server{
		ID:         s.ID,
		Name:       s.Name,
		Status:     string(s.Status),
		PublicIPv4: addrFrom(s.PublicNet.IPv4.IP),
		PublicIPv6: prefixFrom(s.PublicNet.IPv6.Network),
		Labels:     s.Labels,
	}
	for _, pn := range s.PrivateNet {
		p := PrivateNet{IP: addrFrom(pn.IP)}
		if pn.Network != nil {
			p.NetworkID = pn.Network.ID
		}
		for _, a := range pn.Aliases {
			p.AliasIPs = append(p.AliasIPs, addrFrom(a))
		}
		out.PrivateNets = append(out.PrivateNets, p)
	}
	return out
}

func actionFrom(a *hcloud.Action) Action {
	return Action{
		ID:           a.ID,
		Command:      a.Command,
		Status:       string(a.Status),
		Progress:     a.Progress,
		ErrorCode:    a.ErrorCode,
		ErrorMessage: a.ErrorMessage,
	}
}
