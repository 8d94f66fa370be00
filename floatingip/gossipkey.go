package floatingip

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadKeyFile reads the gossip keys of a group from a key file (see
// ParseKeys). Errors name the file and the line, never a key's bytes.
func LoadKeyFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read gossip key file %s: %w", path, err)
	}
	keys, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("read gossip key file %s: %w", path, err)
	}
	return keys, nil
}

// ParseKeys decodes a gossip key file: one key per line, each the base64 of
// 16, 24 or 32 bytes. The first key encrypts what this member sends; all of
// them are accepted on receive, which is how a key is rotated without a
// partition (add the new key second everywhere, then make it first, then
// remove the old one). Empty lines and lines starting with '#' are skipped.
// A file that holds a single key in raw form (16, 24 or 32 bytes, as
// earlier versions read it) is still accepted. A repeated key is refused, as
// it is surely a mistake in an edit.
//
// Errors say which line is wrong and why, never what it holds: the file is
// a secret.
func ParseKeys(b []byte) ([][]byte, error) {
	keys, lineErr := parseKeyLines(b)
	if lineErr == nil {
		return keys, nil
	}
	// One raw key, which may hold any byte, newlines included.
	if k, err := ParseKey(b); err == nil {
		return [][]byte{k}, nil
	}
	return nil, lineErr
}

// errNoKey means the file has no key line.
var errNoKey = errors.New("no key")

func parseKeyLines(b []byte) ([][]byte, error) {
	var keys [][]byte
	first := map[string]int{} // key -> line it was first on
	for i, line := range bytes.Split(b, []byte("\n")) {
		n := i + 1
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, err := decodeKeyLine(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if prev, ok := first[string(k)]; ok {
			return nil, fmt.Errorf("line %d: repeats the key of line %d", n, prev)
		}
		first[string(k)] = n
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errNoKey
	}
	return keys, nil
}

var errKeyLine = errors.New("not the base64 of a 16, 24 or 32 byte key")

// decodeKeyLine decodes one trimmed line. A base64 line must be the whole
// key: DecodeString would also skip embedded newlines, which a line has not.
func decodeKeyLine(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t\r") {
		return nil, errKeyLine
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !validKeyLen(len(k)) {
		return nil, errKeyLine
	}
	return k, nil
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// errInsecureKeys: memberlist cannot turn encryption on or off at run time.
var errInsecureKeys = errors.New("the group runs without encryption; a restart is needed to add keys")

// SetKeys replaces the keyring of a running group with keys (as ParseKeys
// returns them): keys[0] encrypts from now on, all of them decrypt. New keys
// are added before the primary changes and old ones removed last, so that
// no packet in flight meets a member without its key. The caller reloads
// the key file on every member in the order README describes.
func (g *Gossip) SetKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("set gossip keys of group %s: %w", g.cfg.Group, errNoKey)
	}
	if g.keyring == nil {
		return fmt.Errorf("set gossip keys of group %s: %w", g.cfg.Group, errInsecureKeys)
	}
	for _, k := range keys {
		if err := g.keyring.AddKey(k); err != nil {
			return fmt.Errorf("set gossip keys of group %s: add key: %w", g.cfg.Group, err)
		}
	}
	if err := g.keyring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("set gossip keys of group %s: use key: %w", g.cfg.Group, err)
	}
	keep := map[string]bool{}
	for _, k := range keys {
		keep[string(k)] = true
	}
	for _, k := range g.keyring.GetKeys() {
		if keep[string(k)] {
			continue
		}
		if err := g.keyring.RemoveKey(k); err != nil {
			return fmt.Errorf("set gossip keys of group %s: remove key: %w", g.cfg.Group, err)
		}
	}
	return nil
}
