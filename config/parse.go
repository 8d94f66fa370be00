package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds what Load reads; a real configuration is a few KiB.
const maxFileSize = 1 << 20

// ParseError is one problem found while decoding the file: a syntax error,
// an unknown key or a value of the wrong type.
type ParseError struct {
	Line int    // 1-based line in the file, 0 when unknown
	Key  string // dotted key path such as "groups[0].health.rise", "" when unknown
	Msg  string
}

// Error implements error as "line 3: metadata.timeout: <problem>".
func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and parses the file at path. A missing file at DefaultPath (or
// path "", which means DefaultPath) yields Default(): every key is optional,
// so is the file. A missing file at any other path is an error, because the
// operator asked for it explicitly.
func Load(path string) (Config, error) {
	if path == "" {
		path = DefaultPath
	}
	return load(path, path == DefaultPath)
}

func load(path string, optional bool) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return Default(), nil
		}
		return Config{}, fmt.Errorf("open config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return Config{}, fmt.Errorf("read config %s: larger than %d bytes", path, maxFileSize)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("parse config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a configuration document strictly: unknown keys, values of
// the wrong type and durations that time.ParseDuration rejects (plain
// numbers included) are errors naming the line and the key. Keys that are
// absent or null get their defaults (Default, DefaultGroup); string keys that
// have a default also get it when set to "". The returned error is an
// errors.Join of *ParseError values.
func Parse(data []byte) (Config, error) {
	c := Default()
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil // empty document: all defaults
		}
		return Config{}, syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return Config{}, syntaxError(err)
		}
		return Config{}, &ParseError{Line: extra.Line, Msg: "only one YAML document is allowed"}
	}

	// Decode a second time straight from the bytes: only the Decoder
	// honours KnownFields, Node.Decode does not.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&c); err != nil {
		return Config{}, decodeError(err, &root)
	}
	if err := checkIntegers(&root); err != nil {
		return Config{}, err
	}
	if err := checkPrivateIPs(&root); err != nil {
		return Config{}, err
	}
	applyDefaults(&c, &root)
	return c, nil
}

// intKeys are the keys of integer fields. yaml would silently truncate a
// number such as 1.5 into them; Parse refuses it instead. (The schema has no
// float fields, so no other key needs this.)
var intKeys = map[string]bool{
	"attempts": true, "mtu": true, "default_route_metric": true, "priority": true,
	"port": true, "max_moves_per_minute": true, "rise": true, "fall": true,
}

func checkIntegers(root *yaml.Node) error {
	var errs []error
	for line, keys := range indexKeys(root) {
		for _, k := range keys {
			if k.float && intKeys[k.key] && k.line == line {
				errs = append(errs, &ParseError{Line: line, Key: k.path, Msg: fmt.Sprintf("want an integer, got number %q", k.value)})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return a.(*ParseError).Line - b.(*ParseError).Line })
	return errors.Join(errs...)
}

var syntaxRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(err error) error {
	msg := err.Error()
	if m := syntaxRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ParseError{Line: line, Msg: m[2]}
	}
	return &ParseError{Msg: strings.TrimPrefix(msg, "yaml: ")}
}

var (
	typeErrRE    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
	unknownKeyRE = regexp.MustCompile(`^line (\d+): field (.*) not found in type \S+$`)
	lineRE       = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decodeError turns yaml's TypeError (one line per problem, Go type names)
// into ParseErrors that name the key as the user wrote it.
func decodeError(err error, root *yaml.Node) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(err)
	}
	idx := indexKeys(root)
	errs := make([]error, 0, len(te.Errors))
	for _, s := range te.Errors {
		errs = append(errs, convertTypeError(s, idx))
	}
	return errors.Join(errs...)
}

func convertTypeError(s string, idx keyIndex) *ParseError {
	if m := unknownKeyRE.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		key := idx.find(line, func(k keyPos) bool { return k.key == m[2] })
		if key == "" {
			key = m[2]
		}
		return &ParseError{Line: line, Key: key, Msg: "unknown key"}
	}
	if m := typeErrRE.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		key := idx.find(line, func(k keyPos) bool {
			switch m[2] {
			case "map":
				return k.kind == yaml.MappingNode
			case "seq":
				return k.kind == yaml.SequenceNode
			}
			return k.kind == yaml.ScalarNode && k.value == m[3]
		})
		got := tagName(m[2])
		if m[3] != "" {
			got += " " + strconv.Quote(m[3])
		}
		return &ParseError{Line: line, Key: key, Msg: fmt.Sprintf("want %s, got %s", typeName(m[4]), got)}
	}
	if m := lineRE.FindStringSubmatch(s); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ParseError{Line: line, Key: idx.find(line, nil), Msg: m[2]}
	}
	return &ParseError{Msg: s}
}

func tagName(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "int":
		return "integer"
	case "float":
		return "number"
	case "bool":
		return "boolean"
	case "map":
		return "mapping"
	case "seq":
		return "list"
	case "null":
		return "null"
	}
	return "!!" + tag
}

func typeName(goType string) string {
	switch goType {
	case "time.Duration":
		return `a duration such as "1s" or "500ms"`
	case "int":
		return "an integer"
	case "bool", "*bool":
		return "true or false"
	case "string":
		return "a string"
	case "[]string":
		return "a list of strings"
	case "[]config.Group":
		return "a list of groups"
	case "[]config.PrivateIP":
		return "a list of private IPs"
	case "config.PrivateIP":
		return "a mapping such as {ip: 10.0.1.100, via: alias}"
	case "config.Via":
		return privateIPKinds
	}
	if strings.HasPrefix(goType, "config.") {
		return "a mapping"
	}
	return goType
}

// keyPos is one key of the document with the line its key or value is on.
type keyPos struct {
	path  string // groups[0].health.rise
	key   string // rise
	value string // the scalar value, "" for collections
	float bool   // value is tagged !!float
	kind  yaml.Kind
	line  int // line of the value
}

type keyIndex map[int][]keyPos

// indexKeys maps line numbers to the keys written on them, so that yaml's
// "line N" errors can name the key.
func indexKeys(root *yaml.Node) keyIndex {
	idx := keyIndex{}
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if n == nil || depth > 64 {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				kp := keyPos{path: p, key: k.Value, line: v.Line, kind: v.Kind}
				if v.Kind == yaml.ScalarNode {
					kp.value = v.Value
					kp.float = v.Tag == "!!float"
				}
				idx[k.Line] = append(idx[k.Line], kp)
				if v.Line != k.Line {
					idx[v.Line] = append(idx[v.Line], kp)
				}
				walk(v, p, depth+1)
			}
		}
	}
	walk(root, "", 0)
	return idx
}

// find returns the path of the key on line that match accepts, or the only
// key on that line when match accepts none (or is nil).
func (idx keyIndex) find(line int, match func(keyPos) bool) string {
	keys := idx[line]
	if match != nil {
		for i := len(keys) - 1; i >= 0; i-- {
			if match(keys[i]) {
				return keys[i].path
			}
		}
	}
	if len(keys) == 1 {
		return keys[0].path
	}
	return ""
}
