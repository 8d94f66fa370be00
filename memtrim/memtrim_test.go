package memtrim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseMaps(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []segment
		wantErr string
	}{
		{
			name: "executable, heap and anonymous",
			in: "00400000-00c86000 r-xp 00000000 fe:00 10027084                           /usr/bin/hc-agent\n" +
				"00c86000-015bd000 r--p 00886000 fe:00 10027084                           /usr/bin/hc-agent\n" +
				"015bd000-01637000 rw-p 011bd000 fe:00 10027084                           /usr/bin/hc-agent\n" +
				"01637000-0367c000 rw-p 00000000 00:00 0 \n" +
				"7ffda34e3000-7ffda3504000 rw-p 00000000 00:00 0                          [stack]\n",
			want: []segment{
				{Start: 0x400000, End: 0xc86000, Perms: "r-xp", Path: "/usr/bin/hc-agent"},
				{Start: 0xc86000, End: 0x15bd000, Perms: "r--p", Path: "/usr/bin/hc-agent"},
				{Start: 0x15bd000, End: 0x1637000, Perms: "rw-p", Path: "/usr/bin/hc-agent"},
				{Start: 0x1637000, End: 0x367c000, Perms: "rw-p"},
				{Start: 0x7ffda34e3000, End: 0x7ffda3504000, Perms: "rw-p", Path: "[stack]"},
			},
		},
		{
			name: "path with blanks and deleted executable",
			in:   "00400000-00401000 r-xp 00000000 fe:00 12 /opt/my tools/hc-agent (deleted)\n",
			want: []segment{{Start: 0x400000, End: 0x401000, Perms: "r-xp", Path: "/opt/my tools/hc-agent (deleted)"}},
		},
		{name: "empty", in: "", want: nil},
		{name: "blank lines are skipped", in: "\n  \n", want: nil},
		{name: "too few fields", in: "00400000-00401000 r-xp 0 fe:00\n", wantErr: "maps line 1"},
		{name: "no dash", in: "00400000 r-xp 0 fe:00 1 /x\n", wantErr: "without '-'"},
		{name: "bad start", in: "zz-00401000 r-xp 0 fe:00 1 /x\n", wantErr: "start address"},
		{name: "bad end", in: "00400000-zz r-xp 0 fe:00 1 /x\n", wantErr: "end address"},
		{name: "empty range", in: "00401000-00401000 r-xp 0 fe:00 1 /x\n", wantErr: "end not after start"},
		{name: "short permissions", in: "00400000-00401000 rx 0 fe:00 1 /x\n", wantErr: "4 characters"},
		{name: "error names the line", in: "00400000-00401000 r-xp 0 fe:00 1 /x\nbroken\n", wantErr: "maps line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMaps(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestExecutableSegments(t *testing.T) {
	segs := []segment{
		{Start: 0x1000, End: 0x2000, Perms: "r-xp", Path: "/usr/bin/hc-agent"},
		{Start: 0x2000, End: 0x3000, Perms: "r--p", Path: "/usr/bin/hc-agent"},
		{Start: 0x3000, End: 0x4000, Perms: "rw-p", Path: "/usr/bin/hc-agent"},
		{Start: 0x4000, End: 0x5000, Perms: "r-xp", Path: "/usr/lib/other.so"},
		{Start: 0x5000, End: 0x6000, Perms: "r--p"},
	}
	tests := []struct {
		path string
		want []segment
	}{
		{"/usr/bin/hc-agent", segs[:2]},
		{"/usr/lib/other.so", segs[3:4]},
		{"/nowhere", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			assert.Equal(t, tt.want, executableSegments(segs, tt.path))
		})
	}
}
