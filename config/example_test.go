package config

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// examplePath is the commented default configuration that the packages
// install.
const examplePath = "../packaging/config.yaml"

// commentedSetting matches the commented-out settings of the example: "#"
// followed directly by the setting or by two or more spaces of YAML
// indentation. Prose comments are "# text".
var commentedSetting = regexp.MustCompile(`(?m)^(\s*)#(\S|\s{2,})`)

// uncomment turns the example's commented-out settings into settings.
func uncomment(data []byte) []byte {
	return commentedSetting.ReplaceAll(data, []byte("$1$2"))
}

func TestExampleIsDefault(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	got, err := Parse(data)
	require.NoError(t, err)
	assert.Equal(t, Default(), got, "packaging/config.yaml must state every default")
	require.NoError(t, got.Validate())
}

func TestExampleUncommented(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	got, err := Parse(uncomment(data))
	require.NoError(t, err, "uncommented example:\n%s", uncomment(data))
	require.NoError(t, got.Validate())

	// Everything but the commented-out keys is still the default.
	want := Default()
	want.API.TokenFile = got.API.TokenFile
	want.Groups = got.Groups
	want.Metrics.WebConfigFile = got.Metrics.WebConfigFile
	assert.Equal(t, want, got)
	assert.Equal(t, "/etc/hc-agent/token", got.API.TokenFile)
	assert.Equal(t, "/etc/hc-agent/web-config.yml", got.Metrics.WebConfigFile)

	require.Len(t, got.Groups, 2)
	web, db := got.Groups[0], got.Groups[1]
	// The memberlist sample sets every group key, at its default where it
	// has one.
	d := DefaultGroup()
	assert.Equal(t, "web", web.Name)
	assert.Equal(t, []string{"web-ip"}, web.FloatingIPs)
	assert.Equal(t, d.Priority, web.Priority)
	assert.Equal(t, d.Port, web.Port)
	assert.Equal(t, d.Mode, web.Mode)
	assert.Equal(t, d.PreemptDelay, web.PreemptDelay)
	assert.Equal(t, d.MaxMovesPerMinute, web.MaxMovesPerMinute)
	assert.Equal(t, d.Health.Interval, web.Health.Interval)
	assert.Equal(t, d.Health.Timeout, web.Health.Timeout)
	assert.Equal(t, d.Health.Rise, web.Health.Rise)
	assert.Equal(t, d.Health.Fall, web.Health.Fall)
	assert.Equal(t, HealthHTTP, web.Health.Type)
	assert.Equal(t, []PrivateIP{{IP: "10.0.1.100", Via: ViaAlias}, {IP: "10.0.2.50", Via: ViaRoute}}, web.PrivateIPs)
	assert.False(t, web.Egress, "egress is off by default")
	assert.Equal(t, ModeKeepalived, db.Mode)
	assert.Equal(t, "VI_DB", db.KeepalivedInstance)
}

// TestExampleListsEveryKey checks that each yaml key of the schema appears
// in the example, set or commented out, so that a new key cannot be added
// without documenting it there.
func TestExampleListsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	require.NoError(t, err)
	full := string(uncomment(uncomment(data))) // the nested "#command" too
	for _, key := range schemaKeys() {
		assert.Regexp(t, `(?m)^\s*(- )?`+regexp.QuoteMeta(key)+`:`, full, "key %q missing from packaging/config.yaml", key)
	}
}
