package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPrepareImage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		files      []string
		wantOut    func(dir string) string
		wantRemain bool
	}{
		{
			name:  "dry run lists",
			args:  []string{"--dry-run"},
			files: []string{"netconf-owned.json", "state.json"},
			wantOut: func(dir string) string {
				return "would remove " + filepath.Join(dir, "netconf-owned.json") + "\nwould remove " + filepath.Join(dir, "state.json") + "\n"
			},
			wantRemain: true,
		},
		{
			name:  "removes and says what",
			files: []string{"netconf-owned.json", "state.json"},
			wantOut: func(dir string) string {
				return "removed " + filepath.Join(dir, "netconf-owned.json") + "\nremoved " + filepath.Join(dir, "state.json") + "\n"
			},
		},
		{
			name:    "empty",
			wantOut: func(dir string) string { return "nothing to remove in " + dir + "\n" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600))
			}
			cfg := writeFile(t, "config.yaml", "state_dir: "+dir+"\n", 0o600)
			r := runCLI(t, nil, append([]string{"--config", cfg, "prepare-image"}, tt.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, tt.wantOut(dir), r.stdout)
			left, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Equal(t, tt.wantRemain, len(left) > 0)
		})
	}
}
