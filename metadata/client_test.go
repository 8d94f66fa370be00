package metadata_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// newMem returns a fake served in memory and a client for it. Inside a
// synctest bubble the whole exchange, delays included, runs on fake time.
func newMem(t *testing.T, opts ...metadata.Option) (*metadatatest.Server, *metadata.Client) {
	t.Helper()
	srv := metadatatest.NewUnstarted()
	t.Cleanup(srv.Close)
	base := []metadata.Option{
		metadata.WithEndpoint(metadatatest.InMemoryURL),
		metadata.WithHTTPClient(srv.Client()),
	}
	return srv, metadata.New(append(base, opts...)...)
}

func fullSummary() metadata.Summary {
	s := refSummaryValue()
	s.Extra = map[string]any{"local-ipv4": "10.0.0.2", "public-keys": []any{"ssh-ed25519 AAAA a@b"}}
	return s
}

func TestClientTypedGetters(t *testing.T) {
	srv, c := newMem(t)
	srv.SetSummary(fullSummary())
	srv.SetPrivateNetworks(refNetworks())
	ctx := t.Context()

	tests := []struct {
		name string
		call func() (any, error)
		want any
	}{
		{"Summary", func() (any, error) { return c.Summary(ctx) }, fullSummary()},
		{"Hostname", func() (any, error) { return c.Hostname(ctx) }, "my-server"},
		{"InstanceID", func() (any, error) { return c.InstanceID(ctx) }, int64(42)},
		{"PublicIPv4", func() (any, error) { return c.PublicIPv4(ctx) }, netip.MustParseAddr("1.2.3.4")},
		{"PrivateNetworks", func() (any, error) { return c.PrivateNetworks(ctx) }, refNetworks()},
		{"AvailabilityZone", func() (any, error) { return c.AvailabilityZone(ctx) }, "hel1-dc2"},
		{"Region", func() (any, error) { return c.Region(ctx) }, "eu-central"},
		{"Get summary", func() (any, error) { b, err := c.Get(ctx, ""); return string(b), err }, strings.TrimSpace(mustMarshalSummary(fullSummary()))},
		{"Get extra key", func() (any, error) { b, err := c.Get(ctx, "local-ipv4"); return string(b), err }, "10.0.0.2"},
		{"Get extra list", func() (any, error) { b, err := c.Get(ctx, "public-keys"); return string(b), err }, "- ssh-ed25519 AAAA a@b"},
		{"Value instance-id", func() (any, error) { return c.Value(ctx, metadata.KeyInstanceID) }, int64(42)},
		{"Value public-ipv4", func() (any, error) { return c.Value(ctx, metadata.KeyPublicIPv4) }, "1.2.3.4"},
		{"Value region", func() (any, error) { return c.Value(ctx, metadata.KeyRegion) }, "eu-central"},
		{"Value summary", func() (any, error) { return c.Value(ctx, "") }, fullSummary().Map()},
		{"Value private-networks", func() (any, error) { return c.Value(ctx, metadata.KeyPrivateNetworks) }, metadata.PrivateNetworksValue(refNetworks())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	for _, r := range srv.Requests() {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, "hc-agent", r.Header.Get("User-Agent"))
	}
}

func mustMarshalSummary(s metadata.Summary) string {
	b, err := metadata.MarshalSummary(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestClientEmpty covers 204 and empty 200 answers for every getter.
func TestClientEmpty(t *testing.T) {
	for _, mode := range []string{"204", "empty 200", "whitespace 200"} {
		t.Run(mode, func(t *testing.T) {
			srv, c := newMem(t)
			if mode != "204" {
				body := ""
				if mode == "whitespace 200" {
					body = " \n\t\n"
				}
				for _, k := range append(metadata.Keys(), "") {
					srv.SetRaw(k, body)
				}
			}
			ctx := t.Context()
			s, err := c.Summary(ctx)
			require.NoError(t, err)
			assert.Equal(t, metadata.Summary{}, s)
			for _, get := range []func(context.Context) (string, error){c.Hostname, c.AvailabilityZone, c.Region} {
				v, err := get(ctx)
				require.NoError(t, err)
				assert.Empty(t, v)
			}
			a, err := c.PublicIPv4(ctx)
			require.NoError(t, err)
			assert.False(t, a.IsValid())
			pns, err := c.PrivateNetworks(ctx)
			require.NoError(t, err)
			assert.NotNil(t, pns, "a server without networks gets an empty slice")
			assert.Empty(t, pns)
			b, err := c.Get(ctx, metadata.KeyHostname)
			require.NoError(t, err)
			assert.Empty(t, b)
			_, err = c.InstanceID(ctx)
			wantMalformed(t, err, metadata.KeyInstanceID, "")
		})
	}
}

func TestClientTrimsWhitespace(t *testing.T) {
	srv, c := newMem(t)
	srv.SetRaw(metadata.KeyHostname, "\n  my-server \r\n")
	srv.SetRaw(metadata.KeyInstanceID, " 42\n")
	srv.SetRaw(metadata.KeyPublicIPv4, "1.2.3.4\n")
	srv.SetRaw("", "\n"+refSummary+"\n\n")
	srv.SetRaw(metadata.KeyPrivateNetworks, "\n"+refPrivateNetworks+"\n  \n")
	ctx := t.Context()
	h, err := c.Hostname(ctx)
	require.NoError(t, err)
	assert.Equal(t, "my-server", h)
	id, err := c.InstanceID(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(42), id)
	a, err := c.PublicIPv4(ctx)
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("1.2.3.4"), a)
	s, err := c.Summary(ctx)
	require.NoError(t, err)
	assert.Equal(t, refSummaryValue(), s)
	pns, err := c.PrivateNetworks(ctx)
	require.NoError(t, err)
	assert.Equal(t, refNetworks(), pns)
}

// TestClientStatuses checks which answers are retried and how errors are
// classified. Everything runs on synctest's fake clock.
func TestClientStatuses(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(*metadatatest.Server)
		wantErr      func(error) bool // nil: success
		wantStatus   int
		wantRequests int
	}{
		{name: "503 twice then ok", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, 503, 2) }, wantRequests: 3},
		{name: "500 forever", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, 500, -1) },
			wantErr: metadata.IsUnavailable, wantStatus: 500, wantRequests: 5},
		{name: "429 retried", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, 429, 1) }, wantRequests: 2},
		{name: "hangup retried", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, metadatatest.Hangup, 4) }, wantRequests: 5},
		{name: "hangup forever", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, metadatatest.Hangup, -1) },
			wantErr: metadata.IsUnavailable, wantRequests: 5},
		{name: "404 never retried", setup: func(s *metadatatest.Server) { s.Delete(metadata.KeyHostname) },
			wantErr: metadata.IsNotFound, wantStatus: 404, wantRequests: 1},
		{name: "injected 404 never retried", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, 404, -1) },
			wantErr: metadata.IsNotFound, wantStatus: 404, wantRequests: 1},
		{name: "403 not retried", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, 403, -1) },
			wantErr: metadata.IsUnavailable, wantStatus: 403, wantRequests: 1},
		{name: "redirect refused", setup: func(s *metadatatest.Server) { s.SetStatus(metadata.KeyHostname, 302, -1) },
			wantErr: metadata.IsUnavailable, wantStatus: 302, wantRequests: 1},
		{name: "oversize body", setup: func(s *metadatatest.Server) {
			s.SetRaw(metadata.KeyHostname, strings.Repeat("a", metadata.MaxBodySize+1))
		}, wantErr: metadata.IsMalformed, wantStatus: 200, wantRequests: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, c := newMem(t)
				srv.SetSummary(refSummaryValue())
				tc.setup(srv)
				got, err := c.Hostname(t.Context())
				assert.Len(t, srv.Requests(), tc.wantRequests)
				if tc.wantErr == nil {
					require.NoError(t, err)
					assert.Equal(t, "my-server", got)
					return
				}
				require.Error(t, err)
				assert.True(t, tc.wantErr(err), "wrong kind: %v", err)
				assert.Empty(t, got)
				var e *metadata.Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, metadata.KeyHostname, e.Path)
				assert.Equal(t, tc.wantStatus, e.Status)
				assert.Equal(t, tc.wantRequests, e.Attempts)
			})
		})
	}
}

// TestClientBackoff checks the waits between attempts against the jittered
// exponential schedule: after the n-th failure, within [d/2, d] with
// d = min(max, base·2^(n-1)).
func TestClientBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base, maxWait := 100*time.Millisecond, 500*time.Millisecond
		srv, c := newMem(t, metadata.WithAttempts(6), metadata.WithBackoff(base, maxWait))
		srv.SetStatus("", 503, -1)
		start := time.Now()
		_, err := c.Summary(t.Context())
		require.True(t, metadata.IsUnavailable(err), "got %v", err)
		reqs := srv.Requests()
		require.Len(t, reqs, 6)
		assert.Equal(t, start, reqs[0].Time, "first attempt is immediate")
		for i := 1; i < len(reqs); i++ {
			d := min(maxWait, base<<(i-1))
			gap := reqs[i].Time.Sub(reqs[i-1].Time)
			assert.GreaterOrEqual(t, gap, d/2, "wait after failure %d", i)
			assert.LessOrEqual(t, gap, d, "wait after failure %d", i)
		}
		assert.Equal(t, reqs[5].Time, time.Now(), "no wait after the last attempt")
	})
}

func TestOptionsIgnoreZeroValues(t *testing.T) {
	// Zero values, as in an unset config key, keep the defaults.
	c := metadata.New(metadata.WithEndpoint(""), metadata.WithTimeout(0), metadata.WithAttempts(0), metadata.WithBackoff(0, 0))
	assert.Equal(t, metadata.DefaultEndpoint, c.Endpoint())
	assert.Equal(t, "http://x/y", metadata.New(metadata.WithEndpoint("http://x/y/")).Endpoint())
	for n, d := range map[int]time.Duration{1: metadata.DefaultBackoffBase, 20: metadata.DefaultBackoffMax} {
		w := c.Backoff(n)
		assert.True(t, w >= d/2 && w <= d, "Backoff(%d) = %v, want in [%v, %v]", n, w, d/2, d)
	}
}

func TestBackoffJitter(t *testing.T) {
	c := metadata.New(metadata.WithBackoff(time.Second, 4*time.Second))
	seen := map[time.Duration]bool{}
	for range 200 {
		for n, d := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: 4 * time.Second, 100: 4 * time.Second} {
			w := c.Backoff(n)
			if w < d/2 || w > d {
				t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", n, w, d/2, d)
			}
			if n == 1 {
				seen[w] = true
			}
		}
	}
	assert.Greater(t, len(seen), 100, "waits are jittered")
}

func TestClientTimeout(t *testing.T) {
	t.Run("each attempt times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, c := newMem(t, metadata.WithTimeout(2*time.Second), metadata.WithAttempts(3), metadata.WithBackoff(time.Second, time.Second))
			srv.SetSummary(refSummaryValue())
			srv.SetDelay(metadata.KeyRegion, time.Hour)
			start := time.Now()
			_, err := c.Region(t.Context())
			elapsed := time.Since(start)
			require.True(t, metadata.IsUnavailable(err), "got %v", err)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Len(t, srv.Requests(), 3)
			// Three 2s attempts and two waits in [0.5s, 1s].
			assert.GreaterOrEqual(t, elapsed, 7*time.Second)
			assert.LessOrEqual(t, elapsed, 8*time.Second)
		})
	})
	t.Run("slow but within timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, c := newMem(t, metadata.WithTimeout(2*time.Second))
			srv.SetSummary(refSummaryValue())
			srv.SetDelay(metadata.KeyRegion, 1900*time.Millisecond)
			start := time.Now()
			got, err := c.Region(t.Context())
			require.NoError(t, err)
			assert.Equal(t, "eu-central", got)
			assert.Equal(t, 1900*time.Millisecond, time.Since(start))
			assert.Len(t, srv.Requests(), 1)
		})
	})
	t.Run("first attempt slow, second fast", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, c := newMem(t, metadata.WithTimeout(time.Second))
			srv.SetSummary(refSummaryValue())
			srv.SetDelay(metadata.KeyRegion, time.Hour)
			go func() {
				_ = srv.WaitRequests(t.Context(), 1)
				srv.SetDelay(metadata.KeyRegion, 0)
			}()
			got, err := c.Region(t.Context())
			require.NoError(t, err)
			assert.Equal(t, "eu-central", got)
			assert.Len(t, srv.Requests(), 2)
		})
	})
}

func TestClientContextCancel(t *testing.T) {
	t.Run("during backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, c := newMem(t)
			srv.SetStatus(metadata.KeyHostname, 503, -1)
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				_ = srv.WaitRequests(t.Context(), 2)
				synctest.Wait() // the client is now waiting out its backoff
				cancel()
			}()
			_, err := c.Hostname(ctx)
			assert.ErrorIs(t, err, context.Canceled)
			assert.True(t, metadata.IsUnavailable(err), "got %v", err)
			assert.ErrorContains(t, err, "status 503")
			assert.Len(t, srv.Requests(), 2)
		})
	})
	t.Run("during a slow request", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, c := newMem(t)
			srv.SetDelay(metadata.KeyHostname, time.Hour)
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				_ = srv.WaitRequests(t.Context(), 1)
				synctest.Wait() // the client is now waiting for the answer
				cancel()
			}()
			start := time.Now()
			_, err := c.Hostname(ctx)
			assert.ErrorIs(t, err, context.Canceled)
			assert.Zero(t, time.Since(start))
			assert.Len(t, srv.Requests(), 1)
		})
	})
	t.Run("already cancelled", func(t *testing.T) {
		srv, c := newMem(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := c.Hostname(ctx)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Len(t, srv.Requests(), 0)
	})
}

func TestClientMalformedNotRetried(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		body  string
		call  func(*metadata.Client, context.Context) error
		field string
	}{
		{"garbage summary", "", "hostname: [x\n", func(c *metadata.Client, ctx context.Context) error { _, err := c.Summary(ctx); return err }, ""},
		{"bad summary field", "", "public-ipv4: nope\n", func(c *metadata.Client, ctx context.Context) error { _, err := c.Summary(ctx); return err }, "public-ipv4"},
		{"garbage private-networks", metadata.KeyPrivateNetworks, "}{", func(c *metadata.Client, ctx context.Context) error { _, err := c.PrivateNetworks(ctx); return err }, ""},
		{"bad alias", metadata.KeyPrivateNetworks, entry(map[string]string{"alias_ips": "alias_ips: [x]"}), func(c *metadata.Client, ctx context.Context) error { _, err := c.PrivateNetworks(ctx); return err }, "[0].alias_ips[0]"},
		{"bad instance-id", metadata.KeyInstanceID, "forty-two", func(c *metadata.Client, ctx context.Context) error { _, err := c.InstanceID(ctx); return err }, ""},
		{"bad public-ipv4", metadata.KeyPublicIPv4, "::1", func(c *metadata.Client, ctx context.Context) error { _, err := c.PublicIPv4(ctx); return err }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := newMem(t)
			srv.SetRaw(tc.key, tc.body)
			err := tc.call(c, t.Context())
			wantMalformed(t, err, tc.key, tc.field)
			assert.Len(t, srv.Requests(), 1)
		})
	}
}

func TestClientBodyLimit(t *testing.T) {
	srv, c := newMem(t)
	exact := strings.Repeat("a", metadata.MaxBodySize)
	srv.SetRaw(metadata.KeyHostname, exact)
	got, err := c.Hostname(t.Context())
	require.NoError(t, err)
	assert.Len(t, got, metadata.MaxBodySize)
}

func TestClientInvalidKey(t *testing.T) {
	srv, c := newMem(t)
	for _, k := range []string{"/hostname", "../x", "a/../b", "a//b", "x?y=1", "x#y", "a b", "a/", "%2e%2e"} {
		t.Run(k, func(t *testing.T) {
			_, err := c.Get(t.Context(), k)
			require.Error(t, err)
			assert.ErrorContains(t, err, "invalid key")
		})
	}
	assert.Empty(t, srv.Requests(), "invalid keys are never sent")
}

// --- Real loopback sockets: what only a real transport can show. ---

func TestClientRealSocket(t *testing.T) {
	srv := metadatatest.New(t)
	srv.SetSummary(fullSummary())
	srv.SetPrivateNetworks(refNetworks())
	c := metadata.New(metadata.WithEndpoint(srv.URL()))
	s, err := c.Summary(t.Context())
	require.NoError(t, err)
	assert.Equal(t, fullSummary(), s)
	pns, err := c.PrivateNetworks(t.Context())
	require.NoError(t, err)
	assert.Equal(t, refNetworks(), pns)
}

// TestClientIgnoresProxyEnvironment points the proxy variables at a loopback
// port and checks that the client dials the metadata address itself. The
// test dialer records the address and connects to the fake instead, so
// nothing leaves loopback. net/http reads the proxy variables once per
// process, so the check runs in a child process that starts with them set.
func TestClientIgnoresProxyEnvironment(t *testing.T) {
	const proxy = "http://127.0.0.1:9"
	if os.Getenv("HCAGENT_METADATA_PROXY_CHILD") != "1" {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestClientIgnoresProxyEnvironment$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HCAGENT_METADATA_PROXY_CHILD=1",
			"HTTP_PROXY="+proxy, "http_proxy="+proxy, "ALL_PROXY="+proxy, "all_proxy="+proxy,
			"NO_PROXY=", "no_proxy=", "REQUEST_METHOD=")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "child test:\n%s", out)
		require.Contains(t, string(out), "PASS")
		return
	}
	require.Equal(t, proxy, os.Getenv("HTTP_PROXY"))
	srv := metadatatest.New(t)
	srv.SetSummary(refSummaryValue())
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)

	var mu sync.Mutex
	var dialed []string
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, u.Host)
	}
	c := metadata.New(metadata.WithDialContext(dial)) // DefaultEndpoint
	h, err := c.Hostname(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "my-server", h)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"169.254.169.254:80"}, dialed)
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, metadatatest.BasePath+"/hostname", reqs[0].Path)
}

func TestClientRefusesRedirects(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if r.URL.Path == "/elsewhere" {
			_, _ = w.Write([]byte("evil"))
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	t.Cleanup(ts.Close)
	for name, opts := range map[string][]metadata.Option{
		"default client": nil,
		// A caller's client that follows redirects is overridden.
		"injected client": {metadata.WithHTTPClient(&http.Client{})},
	} {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			paths = nil
			mu.Unlock()
			c := metadata.New(append(opts, metadata.WithEndpoint(ts.URL+metadatatest.BasePath))...)
			got, err := c.Hostname(t.Context())
			assert.Empty(t, got)
			require.True(t, metadata.IsUnavailable(err), "got %v", err)
			assert.ErrorContains(t, err, "status 302")
			assert.ErrorContains(t, err, `redirect to "/elsewhere" refused`)
			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, []string{metadatatest.BasePath + "/hostname"}, paths)
		})
	}
}

func TestClientOversizeRealSocket(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		chunked bool
		wantErr bool
	}{
		{name: "content-length over limit", size: metadata.MaxBodySize + 1, wantErr: true},
		{name: "chunked over limit", size: metadata.MaxBodySize + 1, chunked: true, wantErr: true},
		{name: "chunked far over limit", size: 8 * metadata.MaxBodySize, chunked: true, wantErr: true},
		{name: "chunked at limit", size: metadata.MaxBodySize, chunked: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqs int
			var mu sync.Mutex
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				reqs++
				mu.Unlock()
				chunk := []byte(strings.Repeat("a", 64<<10))
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(tc.size))
				}
				for left := tc.size; left > 0; left -= len(chunk) {
					if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
						return
					}
					if tc.chunked {
						w.(http.Flusher).Flush()
					}
				}
			}))
			t.Cleanup(ts.Close)
			c := metadata.New(metadata.WithEndpoint(ts.URL))
			got, err := c.Get(t.Context(), "x")
			mu.Lock()
			assert.Equal(t, 1, reqs)
			mu.Unlock()
			if tc.wantErr {
				assert.True(t, metadata.IsMalformed(err), "got %v", err)
				assert.ErrorContains(t, err, "exceeds")
				return
			}
			require.NoError(t, err)
			assert.Len(t, got, tc.size)
		})
	}
}

func TestClientHangupRealSocket(t *testing.T) {
	srv := metadatatest.New(t)
	srv.SetSummary(refSummaryValue())
	srv.SetStatus(metadata.KeyHostname, metadatatest.Hangup, 1)
	c := metadata.New(metadata.WithEndpoint(srv.URL()), metadata.WithBackoff(time.Millisecond, time.Millisecond))
	h, err := c.Hostname(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "my-server", h)
	assert.Len(t, srv.Requests(), 2)
}

func TestErrorWrapsCause(t *testing.T) {
	srv, c := newMem(t, metadata.WithAttempts(1))
	srv.SetStatus(metadata.KeyHostname, metadatatest.Hangup, -1)
	_, err := c.Hostname(t.Context())
	var e *metadata.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, metadata.KindUnavailable, e.Kind)
	assert.Zero(t, e.Status)
	assert.True(t, errors.Is(err, e.Err))
	assert.ErrorContains(t, err, "metadata hostname: unavailable: ")
}

// recordHandler keeps the messages and key attribute of every record.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" || a.Key == "attempt" || a.Key == "status" {
			msg += " " + a.Key + "=" + a.Value.String()
		}
		return true
	})
	h.msgs = append(h.msgs, msg)
	return nil
}

func TestClientLogsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &recordHandler{}
		srv, c := newMem(t, metadata.WithLogger(slog.New(h)))
		srv.SetSummary(refSummaryValue())
		srv.SetStatus("", 502, 2)
		_, err := c.Summary(t.Context())
		require.NoError(t, err)
		h.mu.Lock()
		defer h.mu.Unlock()
		assert.Equal(t, []string{
			"DEBUG metadata request failed, retrying key=summary attempt=1 status=502",
			"DEBUG metadata request failed, retrying key=summary attempt=2 status=502",
		}, h.msgs)
	})
}
