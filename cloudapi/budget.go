package cloudapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBudget is returned (wrapped) when the request budget would only allow a
// call after the caller's deadline.
var ErrBudget = errors.New("api request budget exhausted")

type urgentKey struct{}

// WithUrgent marks calls made with the returned context as failover-critical:
// they may spend the reserve of the request budget that polling leaves
// untouched, and after a 429 they only wait for one request to refill
// instead of the full reset. Assign, Unassign and WaitAction are always
// urgent.
func WithUrgent(ctx context.Context) context.Context {
	return context.WithValue(ctx, urgentKey{}, true)
}

// IsUrgent reports whether ctx was marked with WithUrgent.
func IsUrgent(ctx context.Context) bool {
	u, _ := ctx.Value(urgentKey{}).(bool)
	return u
}

// Budget is the process-wide view of the project's API rate limit (3600
// requests per hour, shared by every server and tool of the project). It
// reads RateLimit-Limit, -Remaining and -Reset on every response and paces
// requests before they are sent:
//
//   - Non-urgent calls (polling, listing) never spend the last Reserve
//     requests: when the estimated remaining budget is at the reserve they
//     wait for it to refill, so they slow down to the refill rate.
//   - Urgent calls (see WithUrgent) ignore the reserve.
//   - After a 429, non-urgent calls wait until RateLimit-Reset; urgent calls
//     wait until one request has refilled (about a second at 3600/h).
//
// A wait that would end after the context's deadline fails at once with
// ErrBudget instead of sleeping. One Budget should be shared by every Client
// of the process. The zero value is not usable; use NewBudget.
type Budget struct {
	mu           sync.Mutex
	known        bool
	limit        int
	remaining    float64 // estimate at obsAt
	obsAt        time.Time
	reset        time.Time
	rate         float64 // refill, requests per second
	blockedUntil time.Time
	urgentUntil  time.Time
	reserve      int
	reserveSet   bool

	observer    func(endpoint string, code int)
	requests    atomic.Uint64
	rateLimited atomic.Uint64
}

// BudgetOption configures a Budget.
type BudgetOption func(*Budget)

// WithReserve sets how many requests non-urgent calls leave for urgent ones
// (default 5% of the limit, 180 at 3600/h).
func WithReserve(n int) BudgetOption {
	return func(b *Budget) { b.reserve, b.reserveSet = n, true }
}

// WithObserver sets a hook called after every HTTP exchange with the
// endpoint (method and path with IDs replaced by {id}, e.g.
// "POST /floating_ips/{id}/actions/assign") and the HTTP status (0 when no
// response arrived). Metrics use it to count requests by endpoint and code.
// It must not block.
func WithObserver(fn func(endpoint string, code int)) BudgetOption {
	return func(b *Budget) { b.observer = fn }
}

// NewBudget returns a budget that knows nothing until the first response.
func NewBudget(opts ...BudgetOption) *Budget {
	b := &Budget{}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Known reports whether a response with rate-limit headers was seen yet;
// before that Limit and Remaining are 0.
func (b *Budget) Known() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.known
}

// Limit returns the last RateLimit-Limit seen, 0 before any response.
func (b *Budget) Limit() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// Remaining returns the estimated number of requests left now.
func (b *Budget) Remaining() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.known {
		return 0
	}
	return int(b.estimateLocked(time.Now()))
}

// Reset returns the last RateLimit-Reset seen: when the full budget is back.
func (b *Budget) Reset() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reset
}

// Requests returns how many requests were sent through the budget.
func (b *Budget) Requests() uint64 { return b.requests.Load() }

// RateLimited returns how many responses were 429 rate_limit_exceeded.
func (b *Budget) RateLimited() uint64 { return b.rateLimited.Load() }

func (b *Budget) reserveLocked() float64 {
	if b.reserveSet {
		return float64(b.reserve)
	}
	return float64(b.limit) / 20
}

func (b *Budget) estimateLocked(now time.Time) float64 {
	est := b.remaining
	if el := now.Sub(b.obsAt).Seconds(); el > 0 {
		est += el * b.rate
	}
	return min(est, float64(b.limit))
}

// delayLocked returns how long a call must wait before it may be sent.
func (b *Budget) delayLocked(now time.Time, urgent bool) time.Duration {
	if urgent {
		return b.urgentUntil.Sub(now)
	}
	if d := b.blockedUntil.Sub(now); d > 0 {
		return d
	}
	if !b.known || b.rate <= 0 {
		return 0
	}
	need := b.reserveLocked() + 1 - b.estimateLocked(now)
	if need <= 0 {
		return 0
	}
	return time.Duration(need / b.rate * float64(time.Second))
}

// wait blocks until a call may be sent, then counts it as spent.
func (b *Budget) wait(ctx context.Context, urgent bool) error {
	for {
		b.mu.Lock()
		now := time.Now()
		d := b.delayLocked(now, urgent)
		if d <= 0 {
			if b.known {
				b.remaining = b.estimateLocked(now) - 1
				b.obsAt = now
			}
			b.mu.Unlock()
			b.requests.Add(1)
			return nil
		}
		b.mu.Unlock()
		if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
			return fmt.Errorf("next request allowed in %v, after the deadline: %w", d.Round(time.Millisecond), ErrBudget)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// observe records the rate-limit headers of a response.
func (b *Budget) observe(h http.Header, status int) {
	limit, errL := strconv.Atoi(h.Get("RateLimit-Limit"))
	remaining, errR := strconv.Atoi(h.Get("RateLimit-Remaining"))
	resetUnix, errT := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64)
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if errL == nil && errR == nil && limit > 0 {
		b.known = true
		b.limit = limit
		b.remaining = float64(remaining)
		b.obsAt = now
		// The reference: the remaining count grows evenly, by one per second
		// at 3600/h. Derive the rate from Reset when enough is missing for
		// the one-second resolution of Reset to be precise.
		b.rate = float64(limit) / 3600
		if errT == nil {
			b.reset = time.Unix(resetUnix, 0)
			if missing := limit - remaining; missing >= 10 {
				if secs := b.reset.Sub(now).Seconds(); secs > 0 {
					b.rate = float64(missing) / secs
				}
			}
		}
	}
	if status != http.StatusTooManyRequests {
		return
	}
	b.rateLimited.Add(1)
	until := now.Add(time.Second)
	if errT == nil && time.Unix(resetUnix, 0).After(now) {
		until = time.Unix(resetUnix, 0)
	}
	b.blockedUntil = until
	oneToken := time.Second
	if b.rate > 0 {
		oneToken = time.Duration(float64(time.Second) / b.rate)
	}
	b.urgentUntil = now.Add(min(oneToken, until.Sub(now)))
	if b.known {
		b.remaining = 0
	}
}

// Transport wraps base (http.DefaultTransport when nil) so that every request
// waits for the budget and every response feeds it.
func (b *Budget) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &budgetTransport{b: b, base: base}
}

type budgetTransport struct {
	b    *Budget
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *budgetTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.b.wait(req.Context(), IsUrgent(req.Context())); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	code := 0
	if resp != nil {
		code = resp.StatusCode
		t.b.observe(resp.Header, code)
	}
	if t.b.observer != nil {
		t.b.observer(Endpoint(req.Method, req.URL.Path), code)
	}
	return resp, err
}

// Endpoint returns the bounded metric label for a request: the method and
// the path without the API version prefix, with numeric segments replaced
// by {id}.
func Endpoint(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && len(segs[0]) > 1 && segs[0][0] == 'v' {
		if _, err := strconv.Atoi(segs[0][1:]); err == nil {
			segs = segs[1:]
		}
	}
	for i, s := range segs {
		if _, err := strconv.ParseInt(s, 10, 64); err == nil {
			segs[i] = "{id}"
		}
	}
	return method + " /" + strings.Join(segs, "/")
}
