package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Environment variables read by ResolveToken, named as in the official
// hcloud CLI.
const (
	EnvToken    = "HCLOUD_TOKEN"
	EnvEndpoint = "HCLOUD_ENDPOINT"
)

// maxTokenFileSize bounds what ResolveToken reads; tokens are 64 characters.
const maxTokenFileSize = 4096

// ResolveToken fills c.API.Token and applies the environment, as the hcloud
// CLI does: HCLOUD_ENDPOINT (when non-empty) overrides api.endpoint, and
// HCLOUD_TOKEN (when non-empty) wins over api.token_file. The token file is
// refused when its mode grants any group or other permission (mode&0o077 !=
// 0), when it is not a regular file, or when it is empty. No token at all is
// not an error here: only the features that call the API need one.
//
// Errors name the file, never its content.
func ResolveToken(c *Config, getenv func(string) string) error {
	if ep := strings.TrimSpace(getenv(EnvEndpoint)); ep != "" {
		c.API.Endpoint = ep
	}
	if tok := strings.TrimSpace(getenv(EnvToken)); tok != "" {
		c.API.Token = Secret(tok)
		return nil
	}
	if c.API.TokenFile == "" {
		return nil
	}
	tok, err := readTokenFile(c.API.TokenFile)
	if err != nil {
		return err
	}
	c.API.Token = tok
	return nil
}

func readTokenFile(path string) (Secret, error) {
	data, err := readSecretFile("api.token_file", path, maxTokenFileSize)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("api.token_file %s: %w", path, errEmptyToken)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		// Never quote the content: it is probably a token with a typo.
		return "", fmt.Errorf("api.token_file %s: holds more than one word; it must hold only the token", path)
	}
	return Secret(tok), nil
}

var errEmptyToken = errors.New("empty")

// readSecretFile reads the file of a secret (the API token, a gossip key)
// that key (the configuration key, for errors) names. It is refused when
// its mode grants any group or other permission (mode&0o077 != 0), when it
// is not a regular file or when it is larger than max. Errors name the file,
// never its content.
func readSecretFile(key, path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w", key, path, err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checked file is the read one.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s %s: %w", key, path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", key, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s: mode %04o gives group or others access; run chmod 600 on it", key, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", key, path, err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%s %s: larger than %d bytes", key, path, max)
	}
	return data, nil
}
