package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartCPUProfile(t *testing.T) {
	t.Run("unset does nothing", func(t *testing.T) {
		var stderr bytes.Buffer
		startCPUProfile(func(string) string { return "" }, &stderr)()
		assert.Empty(t, stderr.String())
	})
	t.Run("writes both profiles", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "agent.pprof")
		env := func(k string) string {
			if k == cpuProfileEnv {
				return path
			}
			return ""
		}
		var stderr bytes.Buffer
		startCPUProfile(env, &stderr)()
		assert.Empty(t, stderr.String())
		for _, p := range []string{path, path + ".allocs"} {
			fi, err := os.Stat(p)
			require.NoError(t, err)
			assert.Positive(t, fi.Size(), p)
		}
	})
	t.Run("unwritable path is reported", func(t *testing.T) {
		var stderr bytes.Buffer
		startCPUProfile(func(string) string { return filepath.Join(t.TempDir(), "missing", "x") }, &stderr)()
		assert.Contains(t, stderr.String(), "start cpu profile")
	})
}
