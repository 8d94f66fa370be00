package statedir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{name: "new file in a missing directory"},
		{name: "replaces a world-readable file", setup: func(t *testing.T, path string) {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
		}},
		{name: "a stale fixed-name temporary file does not matter", setup: func(t *testing.T, path string) {
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.Mkdir(path+".tmp", 0o700))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state", "x.json")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			require.NoError(t, WriteFile(path, []byte(`{"a":1}`)))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, `{"a":1}`, string(got))
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			ents, err := os.ReadDir(filepath.Dir(path))
			require.NoError(t, err)
			for _, e := range ents {
				if e.Name() != "x.json" && e.Name() != "x.json.tmp" {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

func TestWriteFileFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	require.NoError(t, WriteFile(path, []byte("old")))
	// A directory in place of the file: the rename fails.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(path, "keep"), nil, 0o600))
	require.Error(t, WriteFile(path, []byte("new")))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "temporary file removed")
}
