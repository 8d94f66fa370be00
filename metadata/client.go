package metadata

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxBodySize is the largest response body the client accepts. Real
// documents are a few KiB; anything near this limit is not the metadata
// service.
const MaxBodySize = 1 << 20

// Defaults of the Client's options.
const (
	DefaultTimeout     = 2 * time.Second
	DefaultAttempts    = 5
	DefaultBackoffBase = 200 * time.Millisecond
	DefaultBackoffMax  = 5 * time.Second
)

// Client reads the metadata service. It is safe for concurrent use.
type Client struct {
	endpoint    string
	timeout     time.Duration
	attempts    int
	backoffBase time.Duration
	backoffMax  time.Duration
	hc          *http.Client
	logger      *slog.Logger
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	// parsePNs is ParsePrivateNetworks; tests wrap it to count parses.
	parsePNs func([]byte) ([]PrivateNetwork, error)
	pns      pnCache
}

// pnCache remembers the last private-networks body that parsed and its
// result (issue 14): the daemon polls that document every 15–30 s and it
// almost never changes, and running the YAML parser on every poll both
// allocates and keeps the parser's code resident in an otherwise idle
// agent. One entry for this one key is all it needs; the other documents
// are read once at start.
type pnCache struct {
	mu    sync.Mutex
	body  []byte
	value []PrivateNetwork // never handed out: callers get copies
	ok    bool
}

// get returns a copy of the cached result if body is the cached body.
func (p *pnCache) get(body []byte) ([]PrivateNetwork, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ok || !bytes.Equal(p.body, body) {
		return nil, false
	}
	return ClonePrivateNetworks(p.value), true
}

// put caches value, the parse result of body, replacing the entry. It keeps
// a copy, so the caller may hand value out. body must not be modified later.
func (p *pnCache) put(body []byte, value []PrivateNetwork) {
	value = ClonePrivateNetworks(value)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body, p.value, p.ok = body, value, true
}

// Option configures a Client.
type Option func(*Client)

// WithEndpoint sets the base URL (default DefaultEndpoint). A trailing slash
// is ignored, and so is "", so an unset config value keeps the default.
func WithEndpoint(url string) Option {
	return func(c *Client) {
		if url != "" {
			c.endpoint = strings.TrimRight(url, "/")
		}
	}
}

// WithTimeout sets the timeout of each request, including reading the body
// (default 2s). Values <= 0 are ignored.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithAttempts sets how many requests one call makes at most, including the
// first (default 5). Values < 1 are ignored.
func WithAttempts(n int) Option {
	return func(c *Client) {
		if n >= 1 {
			c.attempts = n
		}
	}
}

// WithBackoff sets the retry backoff: the wait after the n-th failed attempt
// is drawn uniformly from [d/2, d] with d = min(max, base·2^(n-1)) (defaults
// 200ms and 5s). Values <= 0 are ignored; max is raised to base if smaller.
func WithBackoff(base, max time.Duration) Option {
	return func(c *Client) {
		if base > 0 {
			c.backoffBase = base
		}
		if max > 0 {
			c.backoffMax = max
		}
		if c.backoffMax < c.backoffBase {
			c.backoffMax = c.backoffBase
		}
	}
}

// WithHTTPClient replaces the HTTP client; meant for tests (for example an
// in-memory transport). The client is copied and redirects are refused
// whatever its CheckRedirect says; its Timeout should be 0 as the Client
// applies its own per-request timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			cp := *hc
			c.hc = &cp
		}
	}
}

// WithLogger sets the logger for retries (debug level). The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.logger = l
		}
	}
}

// New returns a Client for DefaultEndpoint unless WithEndpoint says otherwise.
// The default HTTP client ignores proxy environment variables (the metadata
// address is link-local and must never go through a proxy), refuses
// redirects and has its own transport, so nothing else in the process shares
// or alters its connections.
func New(opts ...Option) *Client {
	c := &Client{
		endpoint:    DefaultEndpoint,
		timeout:     DefaultTimeout,
		attempts:    DefaultAttempts,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
		logger:      slog.New(slog.DiscardHandler),
		parsePNs:    ParsePrivateNetworks,
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		dial := c.dial
		if dial == nil {
			dial = (&net.Dialer{Timeout: c.timeout}).DialContext
		}
		c.hc = &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			MaxIdleConns:          2,
			IdleConnTimeout:       30 * time.Second,
			ResponseHeaderTimeout: c.timeout,
			DisableCompression:    true,
		}}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// Endpoint returns the base URL the client reads.
func (c *Client) Endpoint() string { return c.endpoint }

// Summary reads and parses the summary document.
func (c *Client) Summary(ctx context.Context) (Summary, error) {
	b, err := c.fetch(ctx, "")
	if err != nil {
		return Summary{}, err
	}
	return ParseSummary(b)
}

// Hostname reads the server name; empty when the service answers 204.
func (c *Client) Hostname(ctx context.Context) (string, error) {
	return c.text(ctx, KeyHostname)
}

// InstanceID reads the server ID, the only reliable identity of "self". An
// empty answer is a KindMalformed error.
func (c *Client) InstanceID(ctx context.Context) (int64, error) {
	b, err := c.fetch(ctx, KeyInstanceID)
	if err != nil {
		return 0, err
	}
	return ParseInstanceID(b)
}

// PublicIPv4 reads the primary public IPv4 address; the zero Addr when the
// answer is empty (a server without one).
func (c *Client) PublicIPv4(ctx context.Context) (netip.Addr, error) {
	b, err := c.fetch(ctx, KeyPublicIPv4)
	if err != nil {
		return netip.Addr{}, err
	}
	return ParsePublicIPv4(b)
}

// PrivateNetworks reads the private networks the server is attached to. An
// empty answer (204 or an empty 200) yields an empty slice and no error.
//
// It parses the answer only when it changed: when the body is byte for byte
// the last one that parsed, it returns a copy of that result. A body that
// does not parse is never remembered, so it fails every time, and the last
// good result is kept for when the good body comes back. The returned slice
// shares no memory with the client or with other calls' results: callers may
// modify it.
func (c *Client) PrivateNetworks(ctx context.Context) ([]PrivateNetwork, error) {
	b, err := c.fetch(ctx, KeyPrivateNetworks)
	if err != nil {
		return nil, err
	}
	if pns, ok := c.pns.get(b); ok {
		return pns, nil
	}
	pns, err := c.parsePNs(b)
	if err != nil {
		return nil, err
	}
	c.pns.put(b, pns)
	return pns, nil
}

// AvailabilityZone reads the availability zone, e.g. "hel1-dc2".
func (c *Client) AvailabilityZone(ctx context.Context) (string, error) {
	return c.text(ctx, KeyAvailabilityZone)
}

// Region reads the network zone, e.g. "eu-central".
func (c *Client) Region(ctx context.Context) (string, error) {
	return c.text(ctx, KeyRegion)
}

// Get reads one key's raw body with surrounding whitespace trimmed; key ""
// reads the summary. Keys are relative paths below the endpoint (for example
// "public-keys/0"); an empty body (204) yields an empty slice.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := c.fetch(ctx, key)
	if err != nil {
		return nil, err
	}
	return []byte(trimText(b)), nil
}

// Value reads one key and returns it as a plain value for printing with the
// service's key names: the summary as Summary.Map, private-networks as
// PrivateNetworksValue, instance-id as int64, public-ipv4 as a string ("" when
// absent), and any other key as its trimmed text.
func (c *Client) Value(ctx context.Context, key string) (any, error) {
	switch key {
	case "":
		s, err := c.Summary(ctx)
		if err != nil {
			return nil, err
		}
		return s.Map(), nil
	case KeyPrivateNetworks:
		pns, err := c.PrivateNetworks(ctx)
		if err != nil {
			return nil, err
		}
		return PrivateNetworksValue(pns), nil
	case KeyInstanceID:
		return c.InstanceID(ctx)
	case KeyPublicIPv4:
		a, err := c.PublicIPv4(ctx)
		if err != nil {
			return nil, err
		}
		if !a.IsValid() {
			return "", nil
		}
		return a.String(), nil
	default:
		b, err := c.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
}

func (c *Client) text(ctx context.Context, key string) (string, error) {
	b, err := c.fetch(ctx, key)
	if err != nil {
		return "", err
	}
	return trimText(b), nil
}

// validKey rejects keys that would leave the endpoint's path or change the
// query: they are programming errors, never sent.
func validKey(key string) error {
	if key == "" {
		return nil
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.ContainsAny(key, "?#%\\ \t\r\n") {
		return fmt.Errorf("invalid key %q", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid key %q", key)
		}
	}
	return nil
}

// fetch GETs key with retries and returns the untrimmed body (empty for 204).
func (c *Client) fetch(ctx context.Context, key string) ([]byte, error) {
	if err := validKey(key); err != nil {
		return nil, &Error{Path: key, Kind: KindNotFound, Err: err}
	}
	url := c.endpoint
	if key != "" {
		url += "/" + key
	}
	for attempt := 1; ; attempt++ {
		body, retry, err := c.once(ctx, key, url)
		if err == nil {
			return body, nil
		}
		err.Attempts = attempt
		if ctx.Err() != nil {
			return nil, cancelled(ctx, err)
		}
		if !retry || attempt >= c.attempts {
			return nil, err
		}
		wait := c.backoff(attempt)
		c.logger.Debug("metadata request failed, retrying",
			"key", pathName(key), "attempt", attempt, "status", err.Status, "wait", wait, "err", err.Err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, cancelled(ctx, err)
		}
	}
}

// cancelled is the error for a call whose context ended: it wraps the
// context's error (so errors.Is(err, context.Canceled) works) and keeps the
// last attempt's cause for the message.
func cancelled(ctx context.Context, last *Error) *Error {
	cause := "status " + strconv.Itoa(last.Status)
	if last.Err != nil {
		cause = last.Err.Error()
	}
	return &Error{Path: last.Path, Kind: KindUnavailable, Status: last.Status, Attempts: last.Attempts,
		Err: fmt.Errorf("%w (last error: %s)", context.Cause(ctx), cause)}
}

// backoff returns the jittered wait after the n-th failed attempt (n >= 1).
func (c *Client) backoff(n int) time.Duration {
	d := c.backoffBase
	for i := 1; i < n && d < c.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.backoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// once makes one request. retry reports whether another attempt may help.
func (c *Client) once(ctx context.Context, key, url string) (body []byte, retry bool, _ *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, &Error{Path: key, Kind: KindUnavailable, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("User-Agent", "hc-agent")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, true, &Error{Path: key, Kind: KindUnavailable, Err: err}
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
	}()
	st := resp.StatusCode
	switch {
	case st == http.StatusNoContent:
		return []byte{}, false, nil
	case st >= 200 && st < 300:
		if resp.ContentLength > MaxBodySize {
			return nil, false, &Error{Path: key, Kind: KindMalformed, Status: st,
				Err: fmt.Errorf("body of %d bytes exceeds %d", resp.ContentLength, MaxBodySize)}
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
		if err != nil {
			return nil, true, &Error{Path: key, Kind: KindUnavailable, Status: st, Err: fmt.Errorf("read body: %w", err)}
		}
		if len(b) > MaxBodySize {
			return nil, false, &Error{Path: key, Kind: KindMalformed, Status: st,
				Err: fmt.Errorf("body exceeds %d bytes", MaxBodySize)}
		}
		return b, false, nil
	case st == http.StatusNotFound:
		return nil, false, &Error{Path: key, Kind: KindNotFound, Status: st}
	case st >= 300 && st < 400:
		return nil, false, &Error{Path: key, Kind: KindUnavailable, Status: st,
			Err: fmt.Errorf("redirect to %q refused", resp.Header.Get("Location"))}
	case st >= 500 || st == http.StatusTooManyRequests:
		return nil, true, &Error{Path: key, Kind: KindUnavailable, Status: st}
	default:
		return nil, false, &Error{Path: key, Kind: KindUnavailable, Status: st, Err: errors.New("unexpected status")}
	}
}
