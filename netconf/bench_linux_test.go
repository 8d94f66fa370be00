package netconf

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/hc-agent/hc-agent/metadata"
)

// benchNetworks returns n private networks with aliases alias IPs each and
// MACs 86:00:00:bb:00:01… (base selects the third-from-last byte).
func benchNetworks(n, aliases int, base byte) []metadata.PrivateNetwork {
	var nets []metadata.PrivateNetwork
	for i := range n {
		nw := metadata.PrivateNetwork{
			IP:           netip.AddrFrom4([4]byte{10, byte(i), 0, 2}),
			InterfaceNum: i + 1,
			MACAddress:   mustMAC(fmt.Sprintf("86:00:00:%02x:00:%02x", base, i+1)),
			NetworkID:    int64(1000 + i),
			NetworkName:  fmt.Sprintf("bench%d", i),
			Network:      netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16),
			Subnet:       netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 24),
			Gateway:      netip.AddrFrom4([4]byte{10, byte(i), 0, 1}),
		}
		for a := range aliases {
			nw.AliasIPs = append(nw.AliasIPs, netip.AddrFrom4([4]byte{10, byte(i), 1, byte(a + 1)}))
		}
		nets = append(nets, nw)
	}
	return nets
}

var benchSizes = []struct {
	name          string
	nets, aliases int
}{
	{"1net", 1, 0},
	{"10nets-10aliases", 10, 10},
}

// BenchmarkReconcileFake measures Desired+Apply over the fake netlink: the
// CPU cost of a reconcile and the netlink operations (dumps and writes) it
// makes, steady state (nothing to change) and first apply.
func BenchmarkReconcileFake(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		nets := benchNetworks(size.nets, size.aliases, 0xbb)
		newHost := func() *fakeNL {
			f := newFakeNL()
			for _, n := range nets {
				f.addLink(fmt.Sprintf("ens%d", 10+n.InterfaceNum), n.MACAddress.String(), 1500, false)
			}
			return f
		}
		b.Run(size.name+"/steady", func(b *testing.B) {
			f := newHost()
			var owned Owned
			if _, err := Apply(ctx, f, Desired(nets, Options{}), &owned); err != nil {
				b.Fatal(err)
			}
			f.resetCounts()
			for b.Loop() {
				if _, err := Apply(ctx, f, Desired(nets, Options{}), &owned); err != nil {
					b.Fatal(err)
				}
			}
			reads, writes := f.counts()
			if writes != 0 {
				b.Fatalf("steady state made %d writes", writes)
			}
			b.ReportMetric(float64(reads+writes)/float64(b.N), "netlink-ops/op")
		})
		b.Run(size.name+"/first", func(b *testing.B) {
			ops := 0
			for b.Loop() {
				b.StopTimer()
				f := newHost()
				var owned Owned
				b.StartTimer()
				if _, err := Apply(ctx, f, Desired(nets, Options{}), &owned); err != nil {
					b.Fatal(err)
				}
				r, w := f.counts()
				ops += r + w
			}
			b.ReportMetric(float64(ops)/float64(b.N), "netlink-ops/op")
		})
	}
}

// BenchmarkReconcileNetns is the same over real netlink in a namespace (root
// only): steady state, and first apply (addresses and routes are removed
// again outside the timer between iterations; MTU and link state stay, so
// "first" here has two writes per network fewer than on a fresh host).
func BenchmarkReconcileNetns(b *testing.B) {
	ctx := context.Background()
	for i, size := range benchSizes {
		nets := benchNetworks(size.nets, size.aliases, byte(0xc0+i))
		host, peers := newNS(b), newNS(b)
		for _, n := range nets {
			host.addVeth(b, peers, n.MACAddress.String())
		}
		h := &countingNL{nlHandle: host.h}
		var owned Owned // shared: the first-apply run removes what steady added
		b.Run(size.name+"/steady", func(b *testing.B) {
			if _, err := Apply(ctx, h, Desired(nets, Options{}), &owned); err != nil {
				b.Fatal(err)
			}
			h.reads.Store(0)
			h.writes.Store(0)
			for b.Loop() {
				if _, err := Apply(ctx, h, Desired(nets, Options{}), &owned); err != nil {
					b.Fatal(err)
				}
			}
			if w := h.writes.Load(); w != 0 {
				b.Fatalf("steady state made %d writes", w)
			}
			b.ReportMetric(float64(h.reads.Load())/float64(b.N), "netlink-ops/op")
		})
		b.Run(size.name+"/first", func(b *testing.B) {
			ops := 0
			for b.Loop() {
				b.StopTimer()
				if _, err := Apply(ctx, host.h, Desired(nil, Options{}), &owned); err != nil {
					b.Fatal(err)
				}
				h.reads.Store(0)
				h.writes.Store(0)
				b.StartTimer()
				if _, err := Apply(ctx, h, Desired(nets, Options{}), &owned); err != nil {
					b.Fatal(err)
				}
				ops += int(h.reads.Load() + h.writes.Load())
			}
			b.ReportMetric(float64(ops)/float64(b.N), "netlink-ops/op")
		})
	}
}
