package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const testToken = "s3cr3t-t0ken-value"

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		require.NoError(t, os.Chmod(p, mode)) // not subject to umask
		return p
	}
	private := write("private", "  "+testToken+"\n", 0o600)
	readOnly := write("readonly", testToken, 0o400)
	groupReadable := write("group", testToken, 0o640)
	worldReadable := write("world", testToken, 0o644)
	groupWritable := write("gw", testToken, 0o620)
	empty := write("empty", "\n\n", 0o600)
	twoWords := write("two", testToken+" "+testToken, 0o600)

	tests := []struct {
		name         string
		tokenFile    string
		env          map[string]string
		wantToken    string
		wantEndpoint string
		wantErr      string
	}{
		{name: "nothing", wantEndpoint: DefaultAPIEndpoint},
		{name: "env", env: map[string]string{"HCLOUD_TOKEN": testToken}, wantToken: testToken, wantEndpoint: DefaultAPIEndpoint},
		{name: "env wins over file", tokenFile: worldReadable, env: map[string]string{"HCLOUD_TOKEN": "from-env"}, wantToken: "from-env", wantEndpoint: DefaultAPIEndpoint},
		{name: "file trimmed", tokenFile: private, wantToken: testToken, wantEndpoint: DefaultAPIEndpoint},
		{name: "read-only file", tokenFile: readOnly, wantToken: testToken, wantEndpoint: DefaultAPIEndpoint},
		{name: "endpoint from env", env: map[string]string{"HCLOUD_ENDPOINT": "http://127.0.0.1:4000/v1"}, wantEndpoint: "http://127.0.0.1:4000/v1"},
		{name: "group-readable file refused", tokenFile: groupReadable, wantErr: "api.token_file " + groupReadable + ": mode 0640 gives group or others access; run chmod 600 on it"},
		{name: "world-readable file refused", tokenFile: worldReadable, wantErr: "mode 0644 gives group or others access"},
		{name: "group-writable file refused", tokenFile: groupWritable, wantErr: "mode 0620"},
		{name: "missing file", tokenFile: filepath.Join(dir, "nope"), wantErr: "open api.token_file " + filepath.Join(dir, "nope")},
		{name: "directory", tokenFile: dir, wantErr: "not a regular file"},
		{name: "empty file", tokenFile: empty, wantErr: "api.token_file " + empty + ": empty"},
		{name: "two words", tokenFile: twoWords, wantErr: "holds more than one word"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.API.TokenFile = tc.tokenFile
			err := ResolveToken(&c, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.NotContains(t, err.Error(), testToken, "errors never carry the token")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantToken, c.API.Token.Reveal())
			assert.Equal(t, tc.wantEndpoint, c.API.Endpoint)
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c := Default()
	c.API.Token = testToken
	s := c.API.Token

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "token", s, "config", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "token", s, "api", c.API)
	js, err := json.Marshal(c)
	require.NoError(t, err)
	ys, err := yaml.Marshal(map[string]any{"token": s, "api": c.API})
	require.NoError(t, err)

	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprintf("%s", s), "%q": fmt.Sprintf("%q", s),
		"%x": fmt.Sprintf("%x", s), "%d": fmt.Sprintf("%d", s), "%#v": fmt.Sprintf("%#v", s),
		"%+v config": fmt.Sprintf("%+v", c), "%#v config": fmt.Sprintf("%#v", c),
		"slog": logs.String(), "json": string(js), "yaml": string(ys),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			assert.NotContains(t, out, testToken)
			assert.Contains(t, out, "[redacted]")
		})
	}
	assert.Equal(t, testToken, s.Reveal())
}

func TestEmptySecretIsVisiblyEmpty(t *testing.T) {
	var s Secret
	assert.Equal(t, "", s.String())
	assert.Equal(t, "", fmt.Sprint(s))
	js, err := json.Marshal(s)
	require.NoError(t, err)
	assert.Equal(t, `""`, string(js))
	assert.Equal(t, "", s.LogValue().String())
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.API.Token = testToken
	r := c.Redacted()
	assert.Equal(t, "[redacted]", r.API.Token.Reveal())
	assert.Equal(t, testToken, c.API.Token.Reveal(), "the original keeps its token")
	assert.Equal(t, "", Default().Redacted().API.Token.Reveal())
}
