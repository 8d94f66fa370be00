package memtrim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// executableRSS sums the resident kilobytes of the read-only segments of
// this test binary, from /proc/self/smaps.
func executableRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	require.NoError(t, err)
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	total, counting := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		// A mapping's header parses; its "Key: value" lines do not.
		if s, err := parseLine(line); err == nil {
			counting = s.Path == exe && !s.writable()
			continue
		}
		if counting && strings.HasPrefix(line, "Rss:") {
			kb, err := strconv.Atoi(strings.Fields(line)[1])
			require.NoError(t, err)
			total += kb
		}
	}
	require.NoError(t, sc.Err())
	return total
}

// TestTrimUnmapsExecutablePages runs Trim on the test binary itself: the
// pages its start-up touched (runtime, testing, this package) are mapped
// before and mostly gone after, and the process goes on running the code
// it needs.
func TestTrimUnmapsExecutablePages(t *testing.T) {
	before := executableRSS(t)
	require.Positive(t, before, "the test binary has mapped pages of its own code")
	res, err := Trim()
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Segments, 2, "code and read-only data")
	require.Positive(t, res.Bytes)
	after := executableRSS(t)
	t.Logf("executable RSS: %d kB before, %d kB after (%d kB in %d segments)", before, after, res.Bytes>>10, res.Segments)
	require.Less(t, after, before, "Trim unmaps the pages start-up touched")

	// A second Trim works the same: nothing was broken by the first.
	_, err = Trim()
	require.NoError(t, err)
}
