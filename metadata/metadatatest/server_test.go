package metadatatest_test

import (
	"context"
	"io"
	"net/http"
	"net/netip"
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

type answer struct {
	code     int
	body     string
	location string
}

// get fetches path from srv, in memory when base is InMemoryURL.
func get(t *testing.T, hc *http.Client, base, key, method string) answer {
	t.Helper()
	u := base
	if key != "" {
		u += "/" + key
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{code: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
}

func noRedirect(hc *http.Client) *http.Client {
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

func summary() metadata.Summary {
	return metadata.Summary{
		Hostname: "my-server", InstanceID: 42, PublicIPv4: netip.MustParseAddr("1.2.3.4"),
		AvailabilityZone: "hel1-dc2", Region: "eu-central",
		Extra: map[string]any{"local-ipv4": "10.0.0.2", "public-keys": []any{"k1", "k2"}},
	}
}

func TestServerContent(t *testing.T) {
	for _, transport := range []string{"memory", "socket"} {
		t.Run(transport, func(t *testing.T) {
			var srv *metadatatest.Server
			var hc *http.Client
			var base string
			if transport == "memory" {
				srv = metadatatest.NewUnstarted()
				t.Cleanup(srv.Close)
				hc, base = noRedirect(srv.Client()), metadatatest.InMemoryURL
				assert.Empty(t, srv.URL())
			} else {
				srv = metadatatest.New(t)
				hc, base = noRedirect(&http.Client{}), srv.URL()
				assert.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), base)
				assert.True(t, strings.HasSuffix(base, "/hetzner/v1/metadata"), base)
			}

			// A new server: documented keys empty, others unknown.
			assert.Equal(t, answer{code: 204}, get(t, hc, base, "", http.MethodGet))
			assert.Equal(t, answer{code: 204}, get(t, hc, base, metadata.KeyPrivateNetworks, http.MethodGet))
			assert.Equal(t, 404, get(t, hc, base, "nope", http.MethodGet).code)
			assert.Equal(t, 404, get(t, hc, strings.TrimSuffix(base, "/metadata")+"/metadatax", "", http.MethodGet).code)

			srv.SetSummary(summary())
			doc := get(t, hc, base, "", http.MethodGet)
			assert.Equal(t, 200, doc.code)
			assert.Equal(t, "availability-zone: hel1-dc2\nhostname: my-server\ninstance-id: 42\nlocal-ipv4: 10.0.0.2\n"+
				"public-ipv4: 1.2.3.4\npublic-keys:\n  - k1\n  - k2\nregion: eu-central\n", doc.body)
			assert.Equal(t, doc, get(t, hc, base+"/", "", http.MethodGet), "trailing slash is the summary")
			for key, want := range map[string]string{
				metadata.KeyHostname: "my-server", metadata.KeyInstanceID: "42", metadata.KeyPublicIPv4: "1.2.3.4",
				metadata.KeyAvailabilityZone: "hel1-dc2", metadata.KeyRegion: "eu-central",
				"local-ipv4": "10.0.0.2", "public-keys": "- k1\n- k2\n",
			} {
				assert.Equal(t, answer{code: 200, body: want}, get(t, hc, base, key, http.MethodGet), key)
			}
			assert.Equal(t, answer{code: 200}, get(t, hc, base, metadata.KeyHostname, http.MethodHead))
			assert.Equal(t, 405, get(t, hc, base, metadata.KeyHostname, http.MethodPost).code)

			// A new summary replaces the old one's keys.
			srv.SetSummary(metadata.Summary{Hostname: "other"})
			assert.Equal(t, answer{code: 200, body: "other"}, get(t, hc, base, metadata.KeyHostname, http.MethodGet))
			assert.Equal(t, answer{code: 204}, get(t, hc, base, metadata.KeyInstanceID, http.MethodGet))
			assert.Equal(t, 404, get(t, hc, base, "local-ipv4", http.MethodGet).code)

			pns, err := metadata.ParsePrivateNetworks([]byte("- ip: 10.0.0.2\n  mac_address: 86:00:00:2a:7d:e0\n  network_id: 1\n  network: 10.0.0.0/8\n  gateway: 10.0.0.1\n"))
			require.NoError(t, err)
			srv.SetPrivateNetworks(pns)
			got := get(t, hc, base, metadata.KeyPrivateNetworks, http.MethodGet)
			assert.Equal(t, 200, got.code)
			back, err := metadata.ParsePrivateNetworks([]byte(got.body))
			require.NoError(t, err)
			assert.Equal(t, pns, back)
			srv.SetPrivateNetworks(nil)
			assert.Equal(t, answer{code: 204}, get(t, hc, base, metadata.KeyPrivateNetworks, http.MethodGet))

			srv.SetRaw(metadata.KeyRegion, "")
			assert.Equal(t, answer{code: 200}, get(t, hc, base, metadata.KeyRegion, http.MethodGet))
			srv.SetRaw("custom/deep", "x: [")
			assert.Equal(t, answer{code: 200, body: "x: ["}, get(t, hc, base, "custom/deep", http.MethodGet))
			srv.Delete(metadata.KeyRegion)
			assert.Equal(t, 404, get(t, hc, base, metadata.KeyRegion, http.MethodGet).code)
		})
	}
}

func TestServerSetStatus(t *testing.T) {
	srv := metadatatest.NewUnstarted()
	t.Cleanup(srv.Close)
	hc, base := noRedirect(srv.Client()), metadatatest.InMemoryURL
	srv.SetSummary(summary())
	codes := func(key string, n int) []int {
		var out []int
		for range n {
			out = append(out, get(t, hc, base, key, http.MethodGet).code)
		}
		return out
	}

	srv.SetStatus(metadata.KeyHostname, 503, 2)
	assert.Equal(t, []int{503, 503, 200, 200}, codes(metadata.KeyHostname, 4))
	assert.Equal(t, []int{200}, codes(metadata.KeyRegion, 1), "other keys unaffected")

	srv.SetStatus("", 500, -1)
	assert.Equal(t, []int{500, 500, 500}, codes("", 3))
	srv.SetStatus("", 0, 0)
	assert.Equal(t, []int{200}, codes("", 1))

	srv.SetStatus(metadata.KeyHostname, 301, 1)
	a := get(t, hc, base, metadata.KeyHostname, http.MethodGet)
	assert.Equal(t, 301, a.code)
	assert.Equal(t, metadatatest.BasePath, a.location)

	srv.SetStatus(metadata.KeyHostname, 204, 1)
	assert.Equal(t, answer{code: 204}, get(t, hc, base, metadata.KeyHostname, http.MethodGet))
	srv.SetStatus(metadata.KeyHostname, 203, 1)
	assert.Equal(t, answer{code: 203, body: "my-server"}, get(t, hc, base, metadata.KeyHostname, http.MethodGet))

	srv.SetStatus(metadata.KeyHostname, metadatatest.Hangup, 1)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/hostname", nil)
	require.NoError(t, err)
	_, err = hc.Do(req)
	assert.ErrorContains(t, err, "connection closed")
	assert.Equal(t, []int{200}, codes(metadata.KeyHostname, 1))
}

func TestServerHangupSocket(t *testing.T) {
	srv := metadatatest.New(t)
	srv.SetSummary(summary())
	srv.SetStatus(metadata.KeyHostname, metadatatest.Hangup, 1)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+"/hostname", nil)
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
}

func TestServerRequestsAndWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := metadatatest.NewUnstarted()
		t.Cleanup(srv.Close)
		srv.SetSummary(summary())
		hc := srv.Client()
		start := time.Now()

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		require.ErrorIs(t, srv.WaitRequests(ctx, 1), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))

		var wg sync.WaitGroup
		for _, key := range []string{"hostname", "region", ""} {
			wg.Go(func() { get(t, hc, metadatatest.InMemoryURL, key, http.MethodGet) })
		}
		require.NoError(t, srv.WaitRequests(t.Context(), 3))
		wg.Wait()
		reqs := srv.Requests()
		require.Len(t, reqs, 3)
		var keys []string
		for _, r := range reqs {
			keys = append(keys, r.Key)
			assert.Equal(t, http.MethodGet, r.Method)
			assert.Equal(t, time.Now(), r.Time)
			assert.Equal(t, strings.TrimSuffix(metadatatest.BasePath+"/"+r.Key, "/"), r.Path)
		}
		assert.ElementsMatch(t, []string{"hostname", "region", ""}, keys)
	})
}

func TestServerDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := metadatatest.NewUnstarted()
		t.Cleanup(srv.Close)
		srv.SetSummary(summary())
		srv.SetDelay(metadata.KeyRegion, 3*time.Second)
		hc := srv.Client()
		start := time.Now()
		assert.Equal(t, answer{code: 200, body: "eu-central"}, get(t, hc, metadatatest.InMemoryURL, metadata.KeyRegion, http.MethodGet))
		assert.Equal(t, 3*time.Second, time.Since(start))

		// A client that gives up ends the delay.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, metadatatest.InMemoryURL+"/region", nil)
		require.NoError(t, err)
		_, err = hc.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 4*time.Second, time.Since(start))

		srv.SetDelay(metadata.KeyRegion, 0)
		get(t, hc, metadatatest.InMemoryURL, metadata.KeyRegion, http.MethodGet)
		assert.Equal(t, 4*time.Second, time.Since(start))
	})
}

func TestServerRejectsInvalidContent(t *testing.T) {
	srv := metadatatest.NewUnstarted()
	t.Cleanup(srv.Close)
	assert.Panics(t, func() { srv.SetSummary(metadata.Summary{Extra: map[string]any{"hostname": "x"}}) })
	assert.Panics(t, func() { srv.SetPrivateNetworks([]metadata.PrivateNetwork{{}}) })
}
