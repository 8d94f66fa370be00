package main

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/control"
)

// instanceState is what a daemon leaves in its state directory: the state
// record, netconf's and the floating IP applier's ownership records and a
// leftover temporary file of an interrupted write; plus a file and a
// subdirectory that are not hc-agent's (state_dir shared with something
// else), which prepare-image leaves alone.
var instanceState = []string{
	"floatingip-owned.json",
	"netconf-owned.json",
	"other/data.json",
	"state.json",
	"state.json.123456",
	"state.jsonl",
}

func TestPrepareImage(t *testing.T) {
	top := []string{"floatingip-owned.json", "netconf-owned.json", "state.json", "state.json.123456"}
	foreign := []string{"other", "state.jsonl"}
	lines := func(verb, dir string, names []string) string {
		var b strings.Builder
		for _, n := range names {
			b.WriteString(verb + " " + filepath.Join(dir, n) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name       string
		args       []string
		files      []string
		runtimeDir bool // the runtime directory exists
		socket     bool // and a control socket in it: the service seems to run
		wantOut    func(dir string) string
		wantStderr string
		wantRemain []string
		missingDir bool
	}{
		{
			name:       "dry run lists and keeps",
			args:       []string{"--dry-run"},
			files:      instanceState,
			wantOut:    func(dir string) string { return lines("would remove", dir, top) },
			wantRemain: append(slices.Clone(top), foreign...),
		},
		{
			name:       "removes every instance-specific file and says what",
			files:      instanceState,
			wantOut:    func(dir string) string { return lines("removed", dir, top) },
			wantRemain: foreign,
		},
		{
			name:    "empty",
			wantOut: func(dir string) string { return "nothing to remove in " + dir + "\n" },
		},
		{
			name:       "missing state dir",
			missingDir: true,
			wantOut:    func(dir string) string { return "nothing to remove in " + dir + "\n" },
		},
		{
			name:       "warns while the service seems to run",
			files:      []string{"state.json"},
			runtimeDir: true,
			socket:     true,
			wantOut:    func(dir string) string { return lines("removed", dir, []string{"state.json"}) },
			wantStderr: "the hc-agent service seems to be running",
		},
		{
			// A daemon run outside systemd leaves runtime_dir behind; its
			// control socket goes when it stops.
			name:       "runtime dir without a control socket",
			files:      []string{"state.json"},
			runtimeDir: true,
			wantOut:    func(dir string) string { return lines("removed", dir, []string{"state.json"}) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if !tt.missingDir {
				require.NoError(t, os.Mkdir(dir, 0o700))
			}
			for _, f := range tt.files {
				p := filepath.Join(dir, f)
				require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
				require.NoError(t, os.WriteFile(p, []byte("{}"), 0o600))
			}
			run := filepath.Join(t.TempDir(), "run")
			if tt.runtimeDir {
				require.NoError(t, os.Mkdir(run, 0o750))
			}
			if tt.socket {
				ln, err := net.Listen("unix", control.Path(run))
				require.NoError(t, err)
				t.Cleanup(func() { ln.Close() })
			}
			cfg := writeFile(t, "config.yaml", "state_dir: "+dir+"\nruntime_dir: "+run+"\n", 0o600)
			r := runCLI(t, nil, append([]string{"--config", cfg, "prepare-image"}, tt.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			assert.Equal(t, tt.wantOut(dir), r.stdout)
			if tt.wantStderr == "" {
				assert.Empty(t, r.stderr)
			} else {
				assert.Contains(t, r.stderr, tt.wantStderr)
			}
			if tt.missingDir {
				return
			}
			ents, err := os.ReadDir(dir)
			require.NoError(t, err, "the state directory itself must stay")
			var left []string
			for _, e := range ents {
				left = append(left, e.Name())
			}
			slices.Sort(left)
			slices.Sort(tt.wantRemain)
			assert.Equal(t, tt.wantRemain, left)
		})
	}
}

// TestPrepareImageRefusesADangerousStateDir keeps prepare-image, which
// empties state_dir, away from the root and the working directory: it loads
// the configuration without Validate, so it checks state_dir itself.
func TestPrepareImageRefusesADangerousStateDir(t *testing.T) {
	for _, dir := range []string{"/", "//", "var/lib/hc-agent", "."} {
		t.Run(dir, func(t *testing.T) {
			cfg := writeFile(t, "config.yaml", "state_dir: \""+dir+"\"\n", 0o600)
			r := runCLI(t, nil, "--config", cfg, "prepare-image", "--dry-run")
			assert.Equal(t, 1, r.code)
			assert.Empty(t, r.stdout)
			assert.Contains(t, r.stderr, "must be an absolute path other than /")
		})
	}
}
