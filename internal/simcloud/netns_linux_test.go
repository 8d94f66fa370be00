package simcloud

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseNSName(t *testing.T) {
	tests := []struct {
		in   string
		want nsName
		ok   bool
	}{
		{"hcs-123-4-cloud", nsName{123, 4, "cloud"}, true},
		{"hcs-123-0-srv-1", nsName{123, 0, "srv-1"}, true},
		{"hcs-0-1-cloud", nsName{}, false},
		{"hcs-0123-1-cloud", nsName{}, false},
		{"hcs-123-1-", nsName{}, false},
		{"hcs-123-cloud", nsName{}, false},
		{"hcs--1-1-x", nsName{}, false},
		{"other-123-1-cloud", nsName{}, false},
		{"", nsName{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseNSName(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
			if ok {
				assert.Equal(t, tt.in, got.String())
			}
		})
	}
}

func FuzzParseNSName(f *testing.F) {
	for _, s := range []string{"hcs-123-4-cloud", "hcs-123-0-srv-1", "hcs-0-1-cloud", "hcs-123-1-", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseNSName(s)
		if !ok {
			return
		}
		// parse → print → parse is stable, and printing gives the input.
		if got := n.String(); got != s {
			t.Fatalf("String() = %q, want %q", got, s)
		}
		n2, ok2 := parseNSName(n.String())
		if !ok2 || n2 != n {
			t.Fatalf("reparse %q = %+v, %v; want %+v", n.String(), n2, ok2, n)
		}
	})
}
