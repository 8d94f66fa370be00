package metadata_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/hc-agent/hc-agent/metadata"
)

// FuzzParseSummary checks that ParseSummary never panics and that whatever
// it accepts marshals and parses back to the same document.
func FuzzParseSummary(f *testing.F) {
	for _, tc := range summaryCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := metadata.ParseSummary(in)
		if err != nil {
			if !metadata.IsMalformed(err) {
				t.Fatalf("ParseSummary error %v is not KindMalformed", err)
			}
			return
		}
		out, err := metadata.MarshalSummary(s)
		if err != nil {
			t.Fatalf("MarshalSummary of parsed %q: %v", in, err)
		}
		s2, err := metadata.ParseSummary(out)
		if err != nil {
			t.Fatalf("ParseSummary of marshalled %q: %v\ninput %q", out, err, in)
		}
		// Compare typed fields directly and Extra through its rendering:
		// Extra may hold NaN, which is never equal to itself.
		if s.Hostname != s2.Hostname || s.InstanceID != s2.InstanceID || s.PublicIPv4 != s2.PublicIPv4 ||
			s.AvailabilityZone != s2.AvailabilityZone || s.Region != s2.Region {
			t.Fatalf("round trip changed fields:\n%+v\n%+v", s, s2)
		}
		out2, err := metadata.MarshalSummary(s2)
		if err != nil {
			t.Fatalf("MarshalSummary of reparsed: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("marshal not stable:\n%s\n---\n%s\ninput %q", out, out2, in)
		}
	})
}

// FuzzParsePrivateNetworks checks that ParsePrivateNetworks never panics,
// that every accepted entry is valid, and that parse → marshal → parse is
// stable.
func FuzzParsePrivateNetworks(f *testing.F) {
	for _, tc := range privateNetworkCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pns, err := metadata.ParsePrivateNetworks(in)
		if err != nil {
			if !metadata.IsMalformed(err) {
				t.Fatalf("ParsePrivateNetworks error %v is not KindMalformed", err)
			}
			return
		}
		for i, p := range pns {
			if !p.IP.Is4() || !p.Network.Contains(p.IP) || !p.Gateway.Is4() || len(p.MACAddress) != 6 || p.NetworkID <= 0 {
				t.Fatalf("accepted invalid entry %d: %+v from %q", i, p, in)
			}
		}
		out, err := metadata.MarshalPrivateNetworks(pns)
		if err != nil {
			t.Fatalf("MarshalPrivateNetworks of parsed %q: %v", in, err)
		}
		pns2, err := metadata.ParsePrivateNetworks(out)
		if err != nil {
			t.Fatalf("ParsePrivateNetworks of marshalled %q: %v", out, err)
		}
		out2, err := metadata.MarshalPrivateNetworks(pns2)
		if err != nil {
			t.Fatalf("MarshalPrivateNetworks of reparsed: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("marshal not stable:\n%s\n---\n%s", out, out2)
		}
		if !metadata.EqualPrivateNetworks(pns, pns2) {
			t.Fatalf("round trip changed the entries:\n%+v\n%+v", pns, pns2)
		}
	})
}

func BenchmarkParsePrivateNetworks(b *testing.B) {
	in := []byte(refPrivateNetworks)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := metadata.ParsePrivateNetworks(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSummary(b *testing.B) {
	in := []byte(realSummary)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := metadata.ParseSummary(in); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzParseInstanceID checks that ParseInstanceID never panics, that what
// it accepts is positive and prints back to the trimmed input's value, and
// that every error is KindMalformed.
func FuzzParseInstanceID(f *testing.F) {
	for _, s := range []string{"42", " 42\n", "0", "-1", "", "9223372036854775808", "4x", "+7"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		id, err := metadata.ParseInstanceID(in)
		if err != nil {
			if !metadata.IsMalformed(err) {
				t.Fatalf("ParseInstanceID(%q) error %v is not KindMalformed", in, err)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("ParseInstanceID(%q) = %d, want positive", in, id)
		}
		again, err := metadata.ParseInstanceID([]byte(strconv.FormatInt(id, 10)))
		if err != nil || again != id {
			t.Fatalf("ParseInstanceID of its own output %d = %d, %v", id, again, err)
		}
	})
}

// FuzzParsePublicIPv4 checks that ParsePublicIPv4 never panics, that it
// accepts only IPv4 addresses (or nothing), and that every error is
// KindMalformed.
func FuzzParsePublicIPv4(f *testing.F) {
	for _, s := range []string{"203.0.113.7", " 203.0.113.7\n", "", "2001:db8::1", "::ffff:1.2.3.4", "1.2.3", "1.2.3.4/32"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := metadata.ParsePublicIPv4(in)
		if err != nil {
			if !metadata.IsMalformed(err) {
				t.Fatalf("ParsePublicIPv4(%q) error %v is not KindMalformed", in, err)
			}
			return
		}
		if len(bytes.TrimSpace(in)) == 0 {
			if a.IsValid() {
				t.Fatalf("ParsePublicIPv4(%q) = %v, want the zero Addr", in, a)
			}
			return
		}
		if !a.Is4() {
			t.Fatalf("ParsePublicIPv4(%q) = %v, not IPv4", in, a)
		}
	})
}
