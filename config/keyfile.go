package config

import (
	"fmt"
	"strings"
)

// maxKeyFileSize bounds what ReadKeyFile reads: a few base64 keys of 44
// characters, one per line, with room to spare.
const maxKeyFileSize = 4096

// ReadKeyFile reads a group's gossip key file for `hc-agent check-config`,
// with the checks the token file gets: it must be a regular file without any
// group or other permission, and not empty. key names the setting in errors
// (e.g. "groups[0].key_file"); errors never quote the content. Whether the
// content is a valid key is for the gossip code to say (floatingip.ParseKey):
// this package does not duplicate it.
func ReadKeyFile(key, path string) ([]byte, error) {
	data, err := readSecretFile(key, path, maxKeyFileSize)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, fmt.Errorf("%s %s: empty", key, path)
	}
	return data, nil
}
