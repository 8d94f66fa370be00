package config

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParse checks that the decoder never panics, and that whatever it
// accepts renders (Config.YAML) to a document that parses back to the same
// configuration and renders identically again.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	if data, err := os.ReadFile(examplePath); err == nil {
		f.Add(data)
		f.Add(uncomment(data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			assert.NotEmpty(t, err.Error())
			return
		}
		_ = c.Validate() // must not panic either
		out, err := c.YAML()
		require.NoError(t, err)
		again, err := Parse(out)
		require.NoError(t, err, "rendered:\n%s", out)
		require.Equal(t, c, again, "rendered:\n%s", out)
		out2, err := again.YAML()
		require.NoError(t, err)
		require.Equal(t, string(out), string(out2))
	})
}
