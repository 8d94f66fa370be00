package stackdump

import (
	"bytes"
	"strconv"
	"testing"
)

// FuzzParseID checks that parseID never panics, that it accepts exactly a
// "goroutine N " header, and that goroutines keeps every block it parses
// as it was.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"goroutine 1 [running]:\nmain.main()",
		"goroutine 18446744073709551615 [idle]:",
		"goroutine 18446744073709551616 [idle]:",
		"goroutine 007 [idle]:", "goroutine x [idle]:", "goroutine 5", "goroutine  5 [x]:", "", "garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		id, ok := parseID(block)
		if !ok {
			return
		}
		header := []byte("goroutine " + strconv.FormatUint(id, 10) + " ")
		if !bytes.HasPrefix(block, header) && !hasLeadingZeros(block) {
			t.Fatalf("parseID(%q) = %d, but the block does not start with %q", block, id, header)
		}
		for _, g := range goroutines(block) {
			if !bytes.Contains(block, g.stack) {
				t.Fatalf("goroutines(%q) returned a stack %q that is not part of it", block, g.stack)
			}
		}
	})
}

// hasLeadingZeros reports whether the id of a "goroutine N " header has
// leading zeros, which strconv accepts and the runtime never prints.
func hasLeadingZeros(block []byte) bool {
	rest := bytes.TrimPrefix(block, []byte("goroutine "))
	return len(rest) > 1 && rest[0] == '0'
}
