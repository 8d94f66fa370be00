package cloudapi_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/cloudapi"
	"github.com/hc-agent/hc-agent/cloudapi/cloudapitest"
)

const token = "s3cr3t-token-do-not-log"

// newClient returns a simulator and a client wired in memory, usable inside a
// synctest bubble.
func newClient(t *testing.T, simOpts []cloudapitest.Option, opts ...cloudapi.Option) (*cloudapitest.Sim, *cloudapi.Client) {
	t.Helper()
	s := cloudapitest.New(append([]cloudapitest.Option{cloudapitest.WithTokens(token)}, simOpts...)...)
	t.Cleanup(s.Close)
	c := cloudapi.New(token, append([]cloudapi.Option{
		cloudapi.WithEndpoint("http://sim/v1"),
		cloudapi.WithHTTPClient(&http.Client{Transport: s.Transport()}),
	}, opts...)...)
	return s, c
}

func TestClientEndToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithActionDelay(time.Second)})
		ctx := context.Background()
		web1 := s.AddServer(cloudapitest.Server{Name: "web1", Status: "running", PublicIPv4: netip.MustParseAddr("192.0.2.1"),
			PublicIPv6:  netip.MustParsePrefix("2001:db8:1::/64"),
			PrivateNets: []cloudapitest.PrivateNet{{NetworkID: 7, IP: netip.MustParseAddr("10.0.0.2"), AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.0.3")}}},
			Labels:      map[string]string{"group": "web"}})
		s.AddServer(cloudapitest.Server{Name: "db1", Labels: map[string]string{"group": "db"}})
		for i := range 60 {
			s.AddFloatingIP(cloudapitest.FloatingIP{Name: fmt.Sprintf("other-%d", i), Labels: map[string]string{"group": "web", "n": "x"}})
		}
		vip := s.AddFloatingIP(cloudapitest.FloatingIP{Name: "vip", Prefix: netip.MustParsePrefix("203.0.113.5/32"), Labels: map[string]string{"group": "web", "role": "vip"}})
		v6 := s.AddFloatingIP(cloudapitest.FloatingIP{Name: "vip6", Prefix: netip.MustParsePrefix("2001:db8:ff::/64"), ServerID: web1, Labels: map[string]string{"group": "web", "role": "vip"}})

		all, err := c.ListFloatingIPs(ctx, "group=web")
		require.NoError(t, err)
		assert.Len(t, all, 62, "all pages")

		vips, err := c.ListFloatingIPs(ctx, "role=vip")
		require.NoError(t, err)
		require.Len(t, vips, 2)
		assert.Equal(t, cloudapi.FloatingIP{ID: vip, Name: "vip", Type: "ipv4", IP: netip.MustParseAddr("203.0.113.5"),
			Network: netip.MustParsePrefix("203.0.113.5/32"), Labels: map[string]string{"group": "web", "role": "vip"}, HomeLocation: "fsn1"}, vips[0])
		assert.Equal(t, netip.MustParsePrefix("2001:db8:ff::/64"), vips[1].Network)
		assert.Equal(t, netip.MustParseAddr("2001:db8:ff::"), vips[1].IP)
		assert.Equal(t, web1, vips[1].ServerID)

		byName, err := c.GetFloatingIP(ctx, "vip6")
		require.NoError(t, err)
		assert.Equal(t, v6, byName.ID)
		byID, err := c.GetFloatingIP(ctx, fmt.Sprint(vip))
		require.NoError(t, err)
		assert.Equal(t, "vip", byID.Name)
		_, err = c.GetFloatingIP(ctx, "missing")
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeNotFound), "%v", err)

		start := time.Now()
		act, err := c.Assign(ctx, vip, web1)
		require.NoError(t, err)
		assert.Equal(t, "running", act.Status)
		assert.Equal(t, "assign_floating_ip", act.Command)
		done, err := c.WaitAction(ctx, act.ID)
		require.NoError(t, err)
		assert.Equal(t, "success", done.Status)
		assert.Equal(t, time.Second, time.Since(start), "done at the first poll after the action finished")
		got, err := c.GetFloatingIP(ctx, "vip")
		require.NoError(t, err)
		assert.Equal(t, web1, got.ServerID)

		act, err = c.Unassign(ctx, vip)
		require.NoError(t, err)
		_, err = c.WaitAction(ctx, act.ID)
		require.NoError(t, err)

		peers, err := c.ListServers(ctx, "group=web")
		require.NoError(t, err)
		require.Len(t, peers, 1)
		assert.Equal(t, cloudapi.Server{ID: web1, Name: "web1", Status: "running", PublicIPv4: netip.MustParseAddr("192.0.2.1"),
			PublicIPv6:  netip.MustParsePrefix("2001:db8:1::/64"),
			PrivateNets: []cloudapi.PrivateNet{{NetworkID: 7, IP: netip.MustParseAddr("10.0.0.2"), AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.0.3")}}},
			Labels:      map[string]string{"group": "web"}}, peers[0])
		srv, err := c.GetServer(ctx, web1)
		require.NoError(t, err)
		assert.Equal(t, peers[0], srv)
		_, err = c.GetServer(ctx, 424242)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeNotFound), "%v", err)

		_, err = c.ListServers(ctx, "group===x")
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeInvalidInput), "%v", err)
	})
}

func TestRateLimitedIsWaitedOutUntilReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 100 requests per 100s: one per second, full in 100s.
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithRateLimit(100, 100*time.Second)},
			cloudapi.WithRetryDeadline(5*time.Minute))
		s.SetRateLimitRemaining(0)
		start := time.Now()
		_, err := c.ListFloatingIPs(context.Background(), "")
		require.NoError(t, err)
		assert.Equal(t, 100*time.Second, time.Since(start), "waited exactly until RateLimit-Reset")
		assert.Equal(t, 2, s.Requests(token), "one 429, then one request after the reset: no hammering")
		assert.Equal(t, uint64(1), c.Budget().RateLimited())
	})
}

func TestRateLimitedUrgentWaitsOneRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithRateLimit(100, 100*time.Second)})
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		s.SetRateLimitRemaining(0)
		start := time.Now()
		_, err := c.Assign(context.Background(), fip, srv)
		require.NoError(t, err)
		el := time.Since(start)
		assert.GreaterOrEqual(t, el, time.Second)
		assert.Less(t, el, 3*time.Second, "urgent call does not wait for the full reset")
	})
}

func TestRateLimitWaitBeyondDeadlineFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithRateLimit(100, 100*time.Second)})
		s.SetRateLimitRemaining(0)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := c.ListFloatingIPs(ctx, "")
		assert.ErrorIs(t, err, cloudapi.ErrBudget)
		assert.Less(t, time.Since(start), time.Second, "no pointless sleep")
		assert.Equal(t, 1, s.Requests(token))
	})
}

func TestLowBudgetSlowsPollingNotAssign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := cloudapi.NewBudget(cloudapi.WithReserve(100))
		s, c := newClient(t, nil, cloudapi.WithBudget(budget), cloudapi.WithRetryDeadline(2*time.Minute))
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		s.SetRateLimitRemaining(51)
		ctx := context.Background()

		_, err := c.GetFloatingIP(ctx, fmt.Sprint(fip)) // learns: 50 left
		require.NoError(t, err)
		assert.Equal(t, 50, budget.Remaining())
		assert.Equal(t, 3600, budget.Limit())

		start := time.Now()
		act, err := c.Assign(ctx, fip, srv)
		require.NoError(t, err)
		_, err = c.WaitAction(ctx, act.ID)
		require.NoError(t, err)
		assert.Zero(t, time.Since(start), "failover calls spend the reserve without waiting")

		start = time.Now()
		_, err = c.ListFloatingIPs(ctx, "")
		require.NoError(t, err)
		// 50 left (48 after the two urgent calls), reserve 100: polling waits
		// for the bucket to refill above the reserve at 1/s.
		el := time.Since(start)
		assert.GreaterOrEqual(t, el, 50*time.Second, "polling slowed")
		assert.LessOrEqual(t, el, 56*time.Second)

		start = time.Now()
		_, err = c.ListFloatingIPs(ctx, "")
		require.NoError(t, err)
		assert.InDelta(t, time.Second, time.Since(start), float64(100*time.Millisecond), "then at the refill rate")
	})
}

func TestLockedThenSuccessIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithActionDelay(2 * time.Second)})
		a := s.AddServer(cloudapitest.Server{})
		b := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		ctx := context.Background()
		_, err := c.Assign(ctx, fip, a) // runs 2s, locks the IP
		require.NoError(t, err)
		start := time.Now()
		act, err := c.Assign(ctx, fip, b)
		require.NoError(t, err, "locked is retried until the first action is done")
		assert.GreaterOrEqual(t, time.Since(start), 2*time.Second)
		_, err = c.WaitAction(ctx, act.ID)
		require.NoError(t, err)
		got, _ := s.FloatingIP(fip)
		assert.Equal(t, b, got.ServerID)
		locked := 0
		for _, r := range s.RequestLog() {
			if r.Status == http.StatusLocked {
				locked++
			}
		}
		assert.Positive(t, locked)
		assert.LessOrEqual(t, locked, 5, "backoff, not hammering")
	})
}

func TestTransientErrorsRetried(t *testing.T) {
	tests := []struct {
		name  string
		fault func(s *cloudapitest.Sim)
	}{
		{"conflict", func(s *cloudapitest.Sim) { s.FailNext("GET /floating_ips/*", 409, "conflict", 2) }},
		{"server error", func(s *cloudapitest.Sim) { s.FailNext("/floating_ips/*", 500, "server_error", 1) }},
		{"dropped connection", func(s *cloudapitest.Sim) { s.DropConnections(2) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, c := newClient(t, nil)
				fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
				tc.fault(s)
				_, err := c.GetFloatingIP(context.Background(), fmt.Sprint(fip))
				require.NoError(t, err)
			})
		})
	}
}

func TestPermanentErrorsFailAtOnce(t *testing.T) {
	tests := []struct {
		code   string
		status int
		want   string
	}{
		{"forbidden", 403, "forbidden"},
		{"invalid_input", 400, "invalid_input"},
		{"not_found", 404, "not_found"},
		{"unauthorized", 401, "token is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, c := newClient(t, nil)
				srv := s.AddServer(cloudapitest.Server{})
				fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
				s.FailNext("POST /floating_ips/*/actions/assign", tc.status, tc.code, 5)
				start := time.Now()
				_, err := c.Assign(context.Background(), fip, srv)
				require.Error(t, err)
				assert.Zero(t, time.Since(start))
				assert.Equal(t, 1, s.Requests(token))
				assert.True(t, cloudapi.IsError(err, tc.code), "%v", err)
				var e *cloudapi.Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, tc.status, e.Status)
				assert.Contains(t, err.Error(), tc.want)
				assert.Contains(t, err.Error(), fmt.Sprintf("assign floating ip %d to server %d", fip, srv))
			})
		})
	}
}

func TestUnauthorizedIsClearAndHidesToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := cloudapitest.New(cloudapitest.WithTokens("the-right-one"))
		var logs strings.Builder
		c := cloudapi.New(token, cloudapi.WithEndpoint("http://sim/v1"),
			cloudapi.WithHTTPClient(&http.Client{Transport: s.Transport()}))
		start := time.Now()
		_, err := c.ListFloatingIPs(context.Background(), "")
		require.Error(t, err)
		assert.Zero(t, time.Since(start), "fails at once")
		assert.Equal(t, 1, s.Requests(token))
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeUnauthorized))
		assert.False(t, cloudapi.IsError(err, cloudapi.CodeLocked))
		assert.Equal(t, "list floating ips: unable to authenticate (unauthorized, http 401): the API token is invalid or revoked", err.Error())
		fmt.Fprintf(&logs, "%v %+v %#v %v %+v", err, err, err, c, c)
		slog.New(slog.NewTextHandler(&logs, nil)).Info("client", "client", c, "error", err)
		assert.NotContains(t, logs.String(), token)
	})
}

func TestWaitActionError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithActionDelay(time.Second)})
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		s.FailActions(1)
		act, err := c.Assign(context.Background(), fip, srv)
		require.NoError(t, err)
		got, err := c.WaitAction(context.Background(), act.ID)
		assert.True(t, cloudapi.IsError(err, cloudapi.CodeActionFailed), "%v", err)
		assert.Equal(t, "error", got.Status)
		assert.Contains(t, err.Error(), fmt.Sprintf("action %d failed", act.ID))
	})
}

func TestWaitActionDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, []cloudapitest.Option{cloudapitest.WithActionDelay(time.Minute)}, cloudapi.WithPollInterval(time.Second))
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		act, err := c.Assign(context.Background(), fip, srv)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		got, err := c.WaitAction(ctx, act.ID)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, "running", got.Status)
		assert.LessOrEqual(t, s.Requests(token), 7, "one poll per interval")
	})
}

func TestObserver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]int{}
		budget := cloudapi.NewBudget(cloudapi.WithObserver(func(endpoint string, code int) {
			mu.Lock()
			defer mu.Unlock()
			seen[fmt.Sprintf("%s %d", endpoint, code)]++
		}))
		s, c := newClient(t, nil, cloudapi.WithBudget(budget))
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		s.FailNext("POST /floating_ips/*/actions/assign", 423, "locked", 1)
		_, err := c.Assign(context.Background(), fip, srv)
		require.NoError(t, err)
		_, err = c.GetServer(context.Background(), srv)
		require.NoError(t, err)
		assert.Equal(t, map[string]int{
			"POST /floating_ips/{id}/actions/assign 423": 1,
			"POST /floating_ips/{id}/actions/assign 201": 1,
			"GET /servers/{id} 200":                      1,
		}, seen)
		assert.Equal(t, uint64(3), budget.Requests())
	})
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"GET", "/v1/floating_ips", "GET /floating_ips"},
		{"POST", "/v1/floating_ips/42/actions/assign", "POST /floating_ips/{id}/actions/assign"},
		{"GET", "/actions/7", "GET /actions/{id}"},
		{"GET", "/v1/", "GET /"},
		{"GET", "/vip/1", "GET /vip/{id}"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			assert.Equal(t, tc.want, cloudapi.Endpoint(tc.method, tc.path))
		})
	}
}

func TestIsError(t *testing.T) {
	e := &cloudapi.Error{Op: "x", Code: "locked"}
	wrapped := fmt.Errorf("outer: %w", e)
	assert.True(t, cloudapi.IsError(wrapped))
	assert.True(t, cloudapi.IsError(wrapped, "conflict", "locked"))
	assert.False(t, cloudapi.IsError(wrapped, "conflict"))
	assert.False(t, cloudapi.IsError(errors.New("locked")))
}

// BenchmarkPortGetFloatingIP measures the port's overhead per call (budget,
// retry wrapper, hcloud-go, conversion) over the in-memory simulator; compare
// with BenchmarkSimGetFloatingIP in cloudapitest.
func BenchmarkPortGetFloatingIP(b *testing.B) {
	s := cloudapitest.New(cloudapitest.WithTokens(token), cloudapitest.WithRateLimit(1<<30, time.Second))
	fip := fmt.Sprint(s.AddFloatingIP(cloudapitest.FloatingIP{}))
	c := cloudapi.New(token, cloudapi.WithEndpoint("http://sim/v1"), cloudapi.WithHTTPClient(&http.Client{Transport: s.Transport()}))
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.GetFloatingIP(ctx, fip); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWaitActionOnFinishedActionCostsNoRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := newClient(t, nil) // actions finish at once
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		act, err := c.Assign(context.Background(), fip, srv)
		require.NoError(t, err)
		assert.Equal(t, "success", act.Status)
		got, err := c.WaitAction(context.Background(), act.ID)
		require.NoError(t, err)
		assert.Equal(t, act, got)
		assert.Equal(t, 1, s.Requests(token))
	})
}

func TestUrgentOvertakesWaitingPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		budget := cloudapi.NewBudget(cloudapi.WithReserve(100))
		s, c := newClient(t, nil, cloudapi.WithBudget(budget), cloudapi.WithRetryDeadline(5*time.Minute))
		srv := s.AddServer(cloudapitest.Server{})
		fip := s.AddFloatingIP(cloudapitest.FloatingIP{})
		s.SetRateLimitRemaining(10)
		ctx := context.Background()
		_, err := c.GetServer(ctx, srv) // learns: 9 left, below the reserve
		require.NoError(t, err)

		polled := make(chan error, 3)
		for range 3 {
			go func() {
				_, err := c.ListFloatingIPs(ctx, "")
				polled <- err
			}()
		}
		synctest.Wait() // all three polls are parked in the budget
		assert.Equal(t, 1, s.Requests(token))

		start := time.Now()
		act, err := c.Assign(ctx, fip, srv)
		require.NoError(t, err)
		assert.Zero(t, time.Since(start), "assign does not queue behind polls")
		assert.Equal(t, "success", act.Status)
		assert.Equal(t, 2, s.Requests(token))

		for range 3 {
			require.NoError(t, <-polled)
		}
		assert.GreaterOrEqual(t, time.Since(start), 90*time.Second, "polls resumed only above the reserve")
	})
}
