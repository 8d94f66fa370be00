package config

import (
	"bytes"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// YAML renders the effective configuration as the file would set it. The
// API token is never included: when one is resolved, a comment
// "token: [redacted]" under api says so, which keeps the output a valid
// configuration file.
func (c Config) YAML() ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if c.API.Token != "" {
		if api := lookup(docContent(&doc), "api"); api != nil && api.Kind == yaml.MappingNode && len(api.Content) > 0 {
			api.Content[0].HeadComment = "token: " + c.API.Token.String()
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return b.Bytes(), nil
}

// Redacted returns a copy of c whose API token, when set, is replaced by
// "[redacted]", for code that reaches the value without Secret's methods
// (reflection-based dumps, Reveal by mistake). An unset token stays empty.
func (c Config) Redacted() Config {
	c.API.Token = Secret(c.API.Token.shown())
	return c
}
