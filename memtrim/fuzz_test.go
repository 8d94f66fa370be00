package memtrim

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseMaps checks that parseMaps never panics, that every segment it
// returns is a non-empty range with four permission characters, and that
// a segment printed back in the maps format parses to itself.
func FuzzParseMaps(f *testing.F) {
	for _, s := range []string{
		"00400000-00c86000 r-xp 00000000 fe:00 10027084   /usr/bin/hc-agent\n",
		"01637000-0367c000 rw-p 00000000 00:00 0 \n",
		"00400000-00401000 r-xp 0 fe:00 12 /opt/my tools/hc-agent (deleted)\n",
		"7ffda34e3000-7ffda3504000 rw-p 00000000 00:00 0 [stack]\nbroken\n",
		"ffffffffffffffff-0 r-xp 0 0 0\n", "", "\n\n", "a-b c d e f",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, err := parseMaps(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range segs {
			require.Greater(t, s.End, s.Start)
			require.Len(t, s.Perms, 4)
			line := fmt.Sprintf("%x-%x %s 00000000 00:00 0 %s", s.Start, s.End, s.Perms, s.Path)
			again, err := parseMaps(strings.NewReader(line))
			require.NoError(t, err, "printed back: %q", line)
			require.Equal(t, []segment{s}, again, "printed back: %q", line)
		}
	})
}
