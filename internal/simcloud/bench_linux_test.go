package simcloud

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkBuildAndTearDown measures a three-server cloud with one private
// network and a floating IP, from New to Close: the fixed cost every
// end-to-end test pays.
func BenchmarkBuildAndTearDown(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("simcloud needs root to create network namespaces")
	}
	for b.Loop() {
		c, err := New(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.AddNetwork(NetworkSpec{Name: "net-a", Network: mustPrefix("10.0.0.0/16")}); err != nil {
			b.Fatal(err)
		}
		for _, name := range []string{"a", "b", "c"} {
			if _, err := c.AddServer(ServerSpec{Name: name, Networks: []string{"net-a"}}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := c.AddFloatingIP(FloatingIPSpec{Name: "vip"}); err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFloatingIPMove measures moving a floating IP's route and the
// first client answer from the new holder.
func BenchmarkFloatingIPMove(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("simcloud needs root to create network namespaces")
	}
	c, err := New(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	f, err := c.AddFloatingIP(FloatingIPSpec{Name: "vip"})
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"a", "b"}
	for _, name := range names {
		s, err := c.AddServer(ServerSpec{Name: name})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.StartNameService(b.Context(), 80); err != nil {
			b.Fatal(err)
		}
		if err := s.ConfigureFloatingIP(f); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		want := names[i%2]
		i++
		if err := c.RouteFloatingIP(f.Prefix(), want); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(b.Context(), 2*time.Second)
		got, err := c.Get(ctx, f.URL())
		cancel()
		if err != nil || got != want {
			b.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
}
