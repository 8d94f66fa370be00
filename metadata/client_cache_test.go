package metadata_test

import (
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

// newCounted is newMem with a client whose private-networks parser counts
// its calls.
func newCounted(t *testing.T) (*metadatatest.Server, *metadata.Client, *atomic.Int64) {
	t.Helper()
	var parses atomic.Int64
	srv, c := newMem(t, metadata.WithAttempts(1), metadata.WithPrivateNetworksParser(
		func(b []byte) ([]metadata.PrivateNetwork, error) {
			parses.Add(1)
			return metadata.ParsePrivateNetworks(b)
		}))
	return srv, c, &parses
}

// otherNetworks is refNetworks with one alias more on the first network:
// the change the daemon's poll exists to see.
func otherNetworks() []metadata.PrivateNetwork {
	pns := refNetworks()
	pns[0].AliasIPs = append(pns[0].AliasIPs, netip.MustParseAddr("10.0.0.5"))
	return pns
}

// TestClientPrivateNetworksParsesOnlyChangedBodies runs one client through a
// sequence of answers and checks after each call what it returned and how
// many times it has parsed so far.
func TestClientPrivateNetworksParsesOnlyChangedBodies(t *testing.T) {
	const malformed = "- ip: [not, an, address]\n"
	srv, c, parses := newCounted(t)
	steps := []struct {
		name       string
		serve      func()
		want       []metadata.PrivateNetwork
		wantErr    func(error) bool // nil: no error
		wantParses int64
	}{
		{"first body is parsed", func() { srv.SetRaw(metadata.KeyPrivateNetworks, refPrivateNetworks) }, refNetworks(), nil, 1},
		{"same body is not", func() {}, refNetworks(), nil, 1},
		{"same body again is not", func() {}, refNetworks(), nil, 1},
		{"changed body is parsed", func() { srv.SetPrivateNetworks(otherNetworks()) }, otherNetworks(), nil, 2},
		{"changed body again is not", func() {}, otherNetworks(), nil, 2},
		{"malformed body fails", func() { srv.SetRaw(metadata.KeyPrivateNetworks, malformed) }, nil, metadata.IsMalformed, 3},
		{"malformed body fails again, parsed again", func() {}, nil, metadata.IsMalformed, 4},
		{"good body after a bad one comes from the cache", func() { srv.SetPrivateNetworks(otherNetworks()) }, otherNetworks(), nil, 4},
		{"an older body is parsed: one entry only", func() { srv.SetRaw(metadata.KeyPrivateNetworks, refPrivateNetworks) }, refNetworks(), nil, 5},
		{"whitespace makes another body", func() { srv.SetRaw(metadata.KeyPrivateNetworks, refPrivateNetworks+"\n") }, refNetworks(), nil, 6},
		{"204 is parsed once", func() { srv.SetPrivateNetworks(nil) }, []metadata.PrivateNetwork{}, nil, 7},
		{"204 again is not", func() {}, []metadata.PrivateNetwork{}, nil, 7},
		{"empty 200 is the same empty body", func() { srv.SetRaw(metadata.KeyPrivateNetworks, "") }, []metadata.PrivateNetwork{}, nil, 7},
		{"failed read does not parse", func() { srv.SetStatus(metadata.KeyPrivateNetworks, http.StatusNotFound, 1) }, nil, metadata.IsNotFound, 7},
		{"failed read keeps the cache", func() {}, []metadata.PrivateNetwork{}, nil, 7},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			st.serve()
			got, err := c.PrivateNetworks(t.Context())
			if st.wantErr != nil {
				require.Error(t, err)
				require.True(t, st.wantErr(err), "unexpected error %v", err)
				require.Nil(t, got)
			} else {
				require.NoError(t, err)
				// assert.Equal tells nil from empty slices, at every level.
				require.Equal(t, st.want, got)
			}
			require.Equal(t, st.wantParses, parses.Load(), "parses so far")
		})
		if !ok {
			return // the steps share the client: later ones mean nothing
		}
	}
}

// TestClientPrivateNetworksResultsAreCopies changes what one call returned
// and checks that the next call does not see it, both for a result just
// parsed and for one served from the cache.
func TestClientPrivateNetworksResultsAreCopies(t *testing.T) {
	type change struct {
		name string
		f    func([]metadata.PrivateNetwork)
	}
	changes := []change{
		{"replace an entry", func(p []metadata.PrivateNetwork) { p[1] = metadata.PrivateNetwork{} }},
		{"append to AliasIPs in place", func(p []metadata.PrivateNetwork) {
			_ = append(p[0].AliasIPs[:1], netip.MustParseAddr("10.0.0.99"))
		}},
		{"append to AliasIPs of an entry without", func(p []metadata.PrivateNetwork) {
			p[1].AliasIPs = append(p[1].AliasIPs, netip.MustParseAddr("192.168.0.99"))
		}},
	}
	for _, fc := range privateNetworkFieldCases {
		changes = append(changes, change{"change " + fc.field, func(p []metadata.PrivateNetwork) { fc.change(&p[0]) }})
	}
	for _, tc := range changes {
		t.Run(tc.name, func(t *testing.T) {
			srv, c, parses := newCounted(t)
			srv.SetPrivateNetworks(refNetworks())
			for call := range 3 {
				got, err := c.PrivateNetworks(t.Context())
				require.NoError(t, err)
				require.Equal(t, refNetworks(), got, "call %d sees an earlier caller's change", call+1)
				tc.f(got)
			}
			assert.Equal(t, int64(1), parses.Load(), "the later calls must come from the cache")
		})
	}
}

// TestClientPrivateNetworksConcurrent has callers read and scribble on
// their results while the document flips between two bodies; run it with
// -race. Every result must be one of the two documents, intact.
func TestClientPrivateNetworksConcurrent(t *testing.T) {
	srv, c, _ := newCounted(t)
	bodies := [][]metadata.PrivateNetwork{refNetworks(), otherNetworks()}
	srv.SetPrivateNetworks(bodies[0])
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			srv.SetPrivateNetworks(bodies[i%2])
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 200 {
				got, err := c.PrivateNetworks(t.Context())
				if !assert.NoError(t, err) {
					return
				}
				if !assert.True(t, metadata.EqualPrivateNetworks(got, bodies[0]) || metadata.EqualPrivateNetworks(got, bodies[1]),
					"result is neither document: %+v", got) {
					return
				}
				got[0].MACAddress[0] = 0
				got[0].AliasIPs[0] = netip.Addr{}
			}
		})
	}
	wg.Wait()
}
