package cloudapitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuth(t *testing.T) {
	_, c := newTestSim(t)
	for _, tok := range []string{"", "wrong"} {
		t.Run("token="+tok, func(t *testing.T) {
			c.t = t
			resp, m := c.do(tok, "GET", "/floating_ips", nil)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, "unauthorized", m["error"].(map[string]any)["code"])
		})
	}
}

func TestPaginationAndFilters(t *testing.T) {
	s, c := newTestSim(t)
	for i := range 120 {
		role := "web"
		if i%3 == 0 {
			role = "db"
		}
		s.AddFloatingIP(FloatingIP{Name: fmt.Sprintf("ip-%03d", i), Labels: map[string]string{"role": role, "n": strconv.Itoa(i)}})
	}
	tests := []struct {
		query     string
		status    int
		count     int
		page      float64
		next      any
		prev      any
		last      float64
		total     float64
		linkRels  []string
		firstName string
	}{
		{query: "", status: 200, count: 25, page: 1, next: 2.0, prev: nil, last: 5, total: 120, linkRels: []string{"next", "last"}, firstName: "ip-000"},
		{query: "per_page=50&page=3", status: 200, count: 20, page: 3, next: nil, prev: 2.0, last: 3, total: 120, linkRels: []string{"prev", "last"}, firstName: "ip-100"},
		{query: "per_page=500", status: 200, count: 50, page: 1, next: 2.0, prev: nil, last: 3, total: 120, linkRels: []string{"next", "last"}},
		{query: "per_page=50&page=9", status: 200, count: 0, page: 9, next: nil, prev: 3.0, last: 3, total: 120},
		{query: "label_selector=role%3Ddb&per_page=50", status: 200, count: 40, page: 1, last: 1, total: 40, firstName: "ip-000"},
		{query: "label_selector=role+notin+(db),n+in+(1,2,3)", status: 200, count: 2, page: 1, last: 1, total: 2, firstName: "ip-001"},
		{query: "name=ip-007", status: 200, count: 1, page: 1, last: 1, total: 1, firstName: "ip-007"},
		{query: "sort=id:desc", status: 200, count: 25, page: 1, next: 2.0, last: 5, total: 120, firstName: "ip-119"},
		{query: "sort=name", status: 400},
		{query: "page=0", status: 400},
		{query: "label_selector=role%3D%3D%3D", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			c.t = t
			resp, m := c.do(token, "GET", "/floating_ips?"+tc.query, nil)
			require.Equal(t, tc.status, resp.StatusCode, "body %v", m)
			if tc.status != 200 {
				assert.Equal(t, "invalid_input", m["error"].(map[string]any)["code"])
				return
			}
			items := m["floating_ips"].([]any)
			assert.Len(t, items, tc.count)
			p := m["meta"].(map[string]any)["pagination"].(map[string]any)
			assert.Equal(t, tc.page, p["page"])
			assert.Equal(t, tc.last, p["last_page"])
			assert.Equal(t, tc.total, p["total_entries"])
			if tc.next != nil || tc.prev != nil {
				assert.Equal(t, tc.next, p["next_page"])
				assert.Equal(t, tc.prev, p["previous_page"])
			}
			link := resp.Header.Get("Link")
			for _, rel := range tc.linkRels {
				assert.Contains(t, link, `rel="`+rel+`"`)
			}
			if tc.firstName != "" {
				assert.Equal(t, tc.firstName, items[0].(map[string]any)["name"])
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(WithTokens(token), WithRateLimit(3, 3*time.Second))
		c := rawClient{t: t, base: "http://sim/v1", hc: &http.Client{Transport: s.Transport()}}
		var remaining []string
		for range 3 {
			resp, _ := c.do(token, "GET", "/floating_ips", nil)
			require.Equal(t, 200, resp.StatusCode)
			remaining = append(remaining, resp.Header.Get("RateLimit-Remaining"))
			assert.Equal(t, "3", resp.Header.Get("RateLimit-Limit"))
		}
		assert.Equal(t, []string{"2", "1", "0"}, remaining)
		resp, m := c.do(token, "GET", "/floating_ips", nil)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, "rate_limit_exceeded", m["error"].(map[string]any)["code"])
		reset, err := strconv.ParseInt(resp.Header.Get("RateLimit-Reset"), 10, 64)
		require.NoError(t, err)
		assert.Equal(t, time.Now().Add(3*time.Second).Unix(), reset, "full budget back in 3s")
		time.Sleep(time.Second) // one request refills
		resp, _ = c.do(token, "GET", "/floating_ips", nil)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 5, s.Requests(token))
	})
}

func TestAsyncActionsLockAndHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(WithTokens(token), WithActionDelay(2*time.Second))
		defer s.Close()
		c := rawClient{t: t, base: "http://sim/v1", hc: &http.Client{Transport: s.Transport()}}
		a := s.AddServer(Server{Name: "a"})
		b := s.AddServer(Server{Name: "b"})
		fip := s.AddFloatingIP(FloatingIP{Prefix: netip.MustParsePrefix("203.0.113.9/32"), ServerID: a})
		type routed struct {
			fip, srv int64
			p        netip.Prefix
		}
		var mu sync.Mutex
		var hooks []routed
		s.OnAssign(func(f, srv int64, p netip.Prefix) {
			mu.Lock()
			defer mu.Unlock()
			hooks = append(hooks, routed{f, srv, p})
		})

		resp, m := c.do(token, "POST", fmt.Sprintf("/floating_ips/%d/actions/assign", fip), map[string]any{"server": b})
		require.Equal(t, 201, resp.StatusCode)
		act := m["action"].(map[string]any)
		assert.Equal(t, "running", act["status"])
		id := int64(act["id"].(float64))

		resp, m = c.do(token, "POST", fmt.Sprintf("/floating_ips/%d/actions/unassign", fip), nil)
		assert.Equal(t, http.StatusLocked, resp.StatusCode)
		assert.Equal(t, "locked", m["error"].(map[string]any)["code"])

		time.Sleep(time.Second)
		_, m = c.do(token, "GET", fmt.Sprintf("/actions/%d", id), nil)
		assert.Equal(t, "running", m["action"].(map[string]any)["status"])
		assert.Equal(t, 50.0, m["action"].(map[string]any)["progress"])
		got, _ := s.FloatingIP(fip)
		assert.Equal(t, a, got.ServerID, "still routed to a while running")

		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		assert.Equal(t, []routed{{fip, b, netip.MustParsePrefix("203.0.113.9/32")}}, hooks, "hook fires when the action succeeds, without polling")
		mu.Unlock()
		_, m = c.do(token, "GET", fmt.Sprintf("/actions/%d", id), nil)
		assert.Equal(t, "success", m["action"].(map[string]any)["status"])
		assert.Equal(t, 100.0, m["action"].(map[string]any)["progress"])
		got, _ = s.FloatingIP(fip)
		assert.Equal(t, b, got.ServerID)
	})
}

func TestFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(WithTokens(token))
		c := rawClient{t: t, base: "http://sim/v1", hc: &http.Client{Transport: s.Transport()}}
		srv := s.AddServer(Server{})
		fip := s.AddFloatingIP(FloatingIP{})

		s.FailNext("POST /floating_ips/*/actions/assign", 409, "conflict", 1)
		resp, _ := c.do(token, "GET", fmt.Sprintf("/floating_ips/%d", fip), nil)
		assert.Equal(t, 200, resp.StatusCode, "other paths unaffected")
		resp, m := c.do(token, "POST", fmt.Sprintf("/floating_ips/%d/actions/assign", fip), map[string]any{"server": srv})
		assert.Equal(t, 409, resp.StatusCode)
		assert.Equal(t, "conflict", m["error"].(map[string]any)["code"])

		s.FailActions(1)
		resp, m = c.do(token, "POST", fmt.Sprintf("/floating_ips/%d/actions/assign", fip), map[string]any{"server": srv})
		require.Equal(t, 201, resp.StatusCode)
		act := m["action"].(map[string]any)
		assert.Equal(t, "error", act["status"])
		assert.Equal(t, "action_failed", act["error"].(map[string]any)["code"])
		got, _ := s.FloatingIP(fip)
		assert.Zero(t, got.ServerID, "failed action moves nothing")

		s.DropConnections(1)
		req, _ := http.NewRequest("GET", c.base+"/floating_ips", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		_, err := c.hc.Do(req)
		assert.ErrorIs(t, err, ErrDropped)

		s.SetLatency(3 * time.Second)
		start := time.Now()
		resp, _ = c.do(token, "GET", "/floating_ips", nil)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 3*time.Second, time.Since(start))

		log := s.RequestLog()
		assert.Len(t, log, 5)
		assert.Equal(t, 0, log[3].Status, "dropped request logged without status")
	})
}

func TestDropConnectionRealSocket(t *testing.T) {
	s, c := newTestSim(t)
	s.DropConnections(1)
	req, _ := http.NewRequest("GET", c.base+"/floating_ips", nil)
	_, err := c.hc.Do(req)
	assert.Error(t, err)
}

// TestHcloudGoEndToEnd drives the simulator with the official client.
func TestHcloudGoEndToEnd(t *testing.T) {
	s, c := newTestSim(t, WithActionDelay(50*time.Millisecond))
	web1 := s.AddServer(Server{Name: "web1", PublicIPv4: netip.MustParseAddr("192.0.2.1"), PublicIPv6: netip.MustParsePrefix("2001:db8:1::/64"),
		PrivateNets: []PrivateNet{{NetworkID: 7, IP: netip.MustParseAddr("10.0.0.2"), AliasIPs: []netip.Addr{netip.MustParseAddr("10.0.0.3")}, MACAddress: "86:00:00:2a:7d:e0"}},
		Labels:      map[string]string{"hc-agent/group": "web"}})
	web2 := s.AddServer(Server{Name: "web2", Labels: map[string]string{"hc-agent/group": "web"}})
	s.AddServer(Server{Name: "db", Labels: map[string]string{"hc-agent/group": "db"}})

	hc := hcloud.NewClient(hcloud.WithToken(token), hcloud.WithEndpoint(c.base), hcloud.WithHTTPClient(c.hc),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(10 * time.Millisecond)}))
	ctx := context.Background()

	res, _, err := hc.FloatingIP.Create(ctx, hcloud.FloatingIPCreateOpts{Type: hcloud.FloatingIPTypeIPv4, Name: hcloud.Ptr("vip"),
		HomeLocation: &hcloud.Location{Name: "fsn1"}, Labels: map[string]string{"hc-agent/group": "web"}})
	require.NoError(t, err)
	v6, _, err := hc.FloatingIP.Create(ctx, hcloud.FloatingIPCreateOpts{Type: hcloud.FloatingIPTypeIPv6, HomeLocation: &hcloud.Location{Name: "fsn1"}})
	require.NoError(t, err)
	assert.NotNil(t, v6.FloatingIP.Network)

	all, err := hc.FloatingIP.AllWithOpts(ctx, hcloud.FloatingIPListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "hc-agent/group=web"}})
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "vip", all[0].Name)
	assert.Equal(t, "fsn1", all[0].HomeLocation.Name)

	byName, _, err := hc.FloatingIP.Get(ctx, "vip")
	require.NoError(t, err)
	assert.Equal(t, res.FloatingIP.ID, byName.ID)

	act, _, err := hc.FloatingIP.Assign(ctx, byName, &hcloud.Server{ID: web1})
	require.NoError(t, err)
	require.NoError(t, hc.Action.WaitFor(ctx, act))
	got, _, err := hc.FloatingIP.GetByID(ctx, byName.ID)
	require.NoError(t, err)
	assert.Equal(t, web1, got.Server.ID)

	_, _, err = hc.FloatingIP.Assign(ctx, byName, &hcloud.Server{ID: web2})
	require.NoError(t, err)
	_, _, err = hc.FloatingIP.Assign(ctx, byName, &hcloud.Server{ID: web2})
	assert.True(t, hcloud.IsError(err, hcloud.ErrorCodeLocked), "second assign while running: %v", err)

	servers, err := hc.Server.AllWithOpts(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "hc-agent/group=web"}})
	require.NoError(t, err)
	require.Len(t, servers, 2)
	w1 := servers[0]
	assert.Equal(t, "192.0.2.1", w1.PublicNet.IPv4.IP.String())
	assert.Equal(t, "2001:db8:1::/64", w1.PublicNet.IPv6.Network.String())
	require.Len(t, w1.PrivateNet, 1)
	assert.Equal(t, int64(7), w1.PrivateNet[0].Network.ID)
	assert.Equal(t, "10.0.0.3", w1.PrivateNet[0].Aliases[0].String())

	actions, err := hc.FloatingIP.Action.All(ctx, hcloud.ActionListOpts{Sort: []string{"id:desc"}})
	_ = actions
	require.NoError(t, err)

	_, err = hc.FloatingIP.Delete(ctx, v6.FloatingIP)
	require.NoError(t, err)

	bad := hcloud.NewClient(hcloud.WithToken("nope"), hcloud.WithEndpoint(c.base), hcloud.WithHTTPClient(c.hc), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	_, err = bad.FloatingIP.All(ctx)
	assert.True(t, hcloud.IsError(err, hcloud.ErrorCodeUnauthorized), "%v", err)
	assert.False(t, strings.Contains(err.Error(), "nope"))
}

func BenchmarkSimGetFloatingIP(b *testing.B) {
	s := New(WithTokens(token), WithRateLimit(1<<30, time.Second))
	id := s.AddFloatingIP(FloatingIP{})
	hc := &http.Client{Transport: s.Transport()}
	url := fmt.Sprintf("http://sim/v1/floating_ips/%d", id)
	for b.Loop() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

func BenchmarkSimListFloatingIPsSelector(b *testing.B) {
	s := New(WithTokens(token), WithRateLimit(1<<30, time.Second))
	for i := range 200 {
		s.AddFloatingIP(FloatingIP{Labels: map[string]string{"group": strconv.Itoa(i % 10)}})
	}
	hc := &http.Client{Transport: s.Transport()}
	for b.Loop() {
		req, _ := http.NewRequest("GET", "http://sim/v1/floating_ips?per_page=50&label_selector=group+in+(1,2)", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
}

func TestReadOnlyToken(t *testing.T) {
	s := New(WithReadOnlyTokens("ro"))
	fip := s.AddFloatingIP(FloatingIP{})
	srv := s.AddServer(Server{})
	c := rawClient{t: t, base: "http://sim/v1", hc: &http.Client{Transport: s.Transport()}}
	resp, _ := c.do("ro", "GET", "/floating_ips", nil)
	assert.Equal(t, 200, resp.StatusCode)
	resp, m := c.do("ro", "POST", fmt.Sprintf("/floating_ips/%d/actions/assign", fip), map[string]any{"server": srv})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "forbidden", m["error"].(map[string]any)["code"])
}

// FuzzServe sends arbitrary requests: the simulator must not panic and must
// answer every error with a JSON error body.
func FuzzServe(f *testing.F) {
	f.Add("GET", "/floating_ips", "label_selector=k+in+(a,b)&sort=id:desc&page=2&per_page=1", "")
	f.Add("POST", "/floating_ips", "", `{"type":"ipv6","home_location":"fsn1","labels":{"a":"b"}}`)
	f.Add("POST", "/floating_ips/1001/actions/assign", "", `{"server":1000}`)
	f.Add("PUT", "/floating_ips/1001", "", `{"labels":{"hetzner.cloud/x":"y"}}`)
	f.Add("GET", "/actions", "id=1&id=x&status=running", "")
	f.Add("DELETE", "/floating_ips/1001", "", "")
	f.Add("GET", "/servers", "label_selector=!a,b!=c&status=running", "")
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		s := New(WithTokens(token), WithRateLimit(1<<20, time.Second))
		s.AddServer(Server{ID: 1000})
		s.AddFloatingIP(FloatingIP{ID: 1001, ServerID: 1000})
		req, err := http.NewRequest(method, "http://sim/v1"+path+"?"+query, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: s.Transport()}).Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode >= 400 {
			var e errorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			assert.NotEmpty(t, e.Error.Code)
		}
	})
}

func TestFakeClockSettle(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(WithTokens(token), WithClock(func() time.Time { return now }), WithActionDelay(time.Hour))
	defer s.Close()
	srv := s.AddServer(Server{})
	fip := s.AddFloatingIP(FloatingIP{})
	var routedTo int64
	s.OnAssign(func(_, server int64, _ netip.Prefix) { routedTo = server })
	c := rawClient{t: t, base: "http://sim/v1", hc: &http.Client{Transport: s.Transport()}}
	resp, m := c.do(token, "POST", fmt.Sprintf("/floating_ips/%d/actions/assign", fip), map[string]any{"server": srv})
	require.Equal(t, 201, resp.StatusCode)
	assert.Equal(t, "2026-01-01T00:00:00Z", m["action"].(map[string]any)["started"])
	s.Settle()
	assert.Zero(t, routedTo)
	now = now.Add(time.Hour)
	s.Settle()
	assert.Equal(t, srv, routedTo)
	_, m = c.do(token, "GET", "/actions?status=success&sort=finished:desc", nil)
	assert.Len(t, m["actions"], 1)
	assert.Equal(t, "2026-01-01T01:00:00Z", m["actions"].([]any)[0].(map[string]any)["finished"])
}

func BenchmarkSimLoopback(b *testing.B) {
	s := New(WithTokens(token), WithRateLimit(1<<30, time.Second))
	id := s.AddFloatingIP(FloatingIP{})
	srv := httptest.NewServer(s)
	defer srv.Close()
	hc := srv.Client()
	url := fmt.Sprintf("%s/v1/floating_ips/%d", srv.URL, id)
	for b.Loop() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// TestActionSucceedsOnlyOnceRouted checks the order the real API keeps: a
// client that reads a finished assign action finds the address routed,
// because requests wait for the OnAssign hooks of a settling action.
func TestActionSucceedsOnlyOnceRouted(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	s := New(WithTokens(token), WithActionDelay(time.Minute), WithClock(func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return now
	}))
	defer s.Close()
	srv := s.AddServer(Server{})
	fip := s.AddFloatingIP(FloatingIP{})
	entered, release := make(chan struct{}), make(chan struct{})
	var routed atomic.Bool
	s.OnAssign(func(_, _ int64, _ netip.Prefix) {
		close(entered)
		<-release
		routed.Store(true)
	})
	c := rawClient{t: t, base: "http://sim/v1", hc: &http.Client{Transport: s.Transport()}}
	resp, m := c.do(token, "POST", fmt.Sprintf("/floating_ips/%d/actions/assign", fip), map[string]any{"server": srv})
	require.Equal(t, 201, resp.StatusCode)
	actionID := int64(m["action"].(map[string]any)["id"].(float64))

	clock.Lock()
	now = now.Add(time.Minute)
	clock.Unlock()
	settled := make(chan struct{})
	go func() { s.Settle(); close(settled) }() // the action's timer, in effect
	<-entered

	type result struct {
		status string
		routed bool
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://sim/v1/actions/%d", actionID), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: s.Transport()}).Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var body struct {
			Action struct{ Status string } `json:"action"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		got <- result{status: body.Action.Status, routed: routed.Load(), err: err}
	}()
	// While the hook routes the address, the read must not complete.
	select {
	case r := <-got:
		t.Fatalf("action read as %q while the address was still being routed", r.status)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	<-settled
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, "success", r.status)
	assert.True(t, r.routed, "routed before the success was visible")
}
