// Package labelselector parses and evaluates Hetzner Cloud label selectors
// and validates label keys and values as the API reference defines them.
//
// The grammar is a comma-separated list of requirements:
//
//	k==v, k=v    value of key k equals v
//	k!=v         value of key k does not equal v (or k is absent)
//	k            key k is present
//	!k           key k is not present
//	k in (a,b)   value of key k is a or b
//	k notin (a,b) value of key k is neither a nor b (or k is absent)
//
// Blanks around tokens are ignored. Commas inside parentheses separate set
// members, not requirements.
package labelselector

import (
	"errors"
	"fmt"
	"strings"
)

// Operator is the comparison of one requirement.
type Operator string

// The operators of the grammar. "k=v" and "k==v" both parse to Equals.
const (
	Equals       Operator = "="
	NotEquals    Operator = "!="
	Exists       Operator = "exists"
	DoesNotExist Operator = "!"
	In           Operator = "in"
	NotIn        Operator = "notin"
)

// Requirement is one comma-separated term of a selector.
type Requirement struct {
	Key      string
	Operator Operator
	// Values holds one value for Equals and NotEquals, the set for In and
	// NotIn, and nothing for Exists and DoesNotExist.
	Values []string
}

// Selector is a parsed label selector; all requirements must hold. The zero
// value (no requirements) matches every label set, like an empty selector in
// the API.
type Selector struct {
	Requirements []Requirement
}

// ReservedPrefix is the key prefix that users cannot set on resources.
const ReservedPrefix = "hetzner.cloud/"

// SyntaxError reports where a selector is malformed.
type SyntaxError struct {
	Selector string
	Offset   int
	Reason   string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("parse label selector %q at offset %d: %s", e.Selector, e.Offset, e.Reason)
}

// Parse parses a label selector. An empty or blank string yields the empty
// selector, which matches everything.
func Parse(s string) (Selector, error) {
	p := parser{s: s}
	var sel Selector
	p.skipBlanks()
	if p.eof() {
		return sel, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return Selector{}, err
		}
		sel.Requirements = append(sel.Requirements, r)
		p.skipBlanks()
		if p.eof() {
			return sel, nil
		}
		if p.s[p.i] != ',' {
			return Selector{}, p.errorf("expected ',' or end of selector")
		}
		p.i++
	}
}

// MustParse is like Parse but panics on error; for constants in tests.
func MustParse(s string) Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

type parser struct {
	s string
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) skipBlanks() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Selector: p.s, Offset: p.i, Reason: fmt.Sprintf(format, args...)}
}

func isKeyChar(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '/'
}

func isValueChar(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (p *parser) word(ok func(byte) bool) string {
	start := p.i
	for p.i < len(p.s) && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *parser) key() (string, error) {
	p.skipBlanks()
	start := p.i
	k := p.word(isKeyChar)
	if k == "" {
		return "", p.errorf("expected a label key")
	}
	if err := ValidateKey(k); err != nil {
		p.i = start
		return "", p.errorf("%v", err)
	}
	return k, nil
}

func (p *parser) value() (string, error) {
	p.skipBlanks()
	start := p.i
	v := p.word(isValueChar)
	if err := ValidateValue(v); err != nil {
		p.i = start
		return "", p.errorf("%v", err)
	}
	return v, nil
}

func (p *parser) requirement() (Requirement, error) {
	p.skipBlanks()
	if !p.eof() && p.s[p.i] == '!' {
		p.i++
		k, err := p.key()
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: DoesNotExist}, nil
	}
	k, err := p.key()
	if err != nil {
		return Requirement{}, err
	}
	p.skipBlanks()
	rest := p.s[p.i:]
	switch {
	case rest == "" || rest[0] == ',':
		return Requirement{Key: k, Operator: Exists}, nil
	case strings.HasPrefix(rest, "=="), strings.HasPrefix(rest, "!="):
		op := Equals
		if rest[0] == '!' {
			op = NotEquals
		}
		p.i += 2
		v, err := p.value()
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: op, Values: []string{v}}, nil
	case rest[0] == '=':
		p.i++
		v, err := p.value()
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: Equals, Values: []string{v}}, nil
	}
	opStart := p.i
	var op Operator
	switch w := p.word(isAlnum); w {
	case "in":
		op = In
	case "notin":
		op = NotIn
	default:
		p.i = opStart
		return Requirement{}, p.errorf("expected an operator (=, ==, !=, in, notin), ',' or end of selector")
	}
	// "in" and "notin" need a blank or the parenthesis after them; "keyin"
	// was already consumed as the key, so only the set remains to check.
	p.skipBlanks()
	if p.eof() || p.s[p.i] != '(' {
		return Requirement{}, p.errorf("expected '(' after %s", op)
	}
	p.i++
	var vals []string
	for {
		v, err := p.value()
		if err != nil {
			return Requirement{}, err
		}
		if v == "" {
			return Requirement{}, p.errorf("expected a value in the set")
		}
		vals = append(vals, v)
		p.skipBlanks()
		if p.eof() {
			return Requirement{}, p.errorf("expected ')'")
		}
		c := p.s[p.i]
		p.i++
		if c == ')' {
			return Requirement{Key: k, Operator: op, Values: vals}, nil
		}
		if c != ',' {
			p.i--
			return Requirement{}, p.errorf("expected ',' or ')' in the set")
		}
	}
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.Requirements {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Matches reports whether labels satisfy the requirement. As in the API (and
// Kubernetes), != and notin also hold when the key is absent.
func (r Requirement) Matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case Exists:
		return ok
	case DoesNotExist:
		return !ok
	case Equals:
		return ok && v == r.Values[0]
	case NotEquals:
		return !ok || v != r.Values[0]
	case In:
		return ok && contains(r.Values, v)
	case NotIn:
		return !ok || !contains(r.Values, v)
	}
	return false
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// String returns the canonical text of the selector, which Parse accepts and
// turns into an equal selector.
func (s Selector) String() string {
	parts := make([]string, len(s.Requirements))
	for i, r := range s.Requirements {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// String returns the canonical text of the requirement.
func (r Requirement) String() string {
	switch r.Operator {
	case Exists:
		return r.Key
	case DoesNotExist:
		return "!" + r.Key
	case Equals, NotEquals:
		return r.Key + string(r.Operator) + r.Values[0]
	default:
		return r.Key + " " + string(r.Operator) + " (" + strings.Join(r.Values, ",") + ")"
	}
}

// ValidateKey checks a label key: an optional DNS-subdomain prefix of at most
// 253 characters followed by '/', and a name of 1 to 63 characters that
// begins and ends with an alphanumeric and has only alphanumerics, '-', '_'
// and '.' in between.
func ValidateKey(k string) error {
	name := k
	if i := strings.LastIndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if err := validatePrefix(prefix); err != nil {
			return fmt.Errorf("label key %q: %w", k, err)
		}
	}
	if name == "" {
		return fmt.Errorf("label key %q: name is empty", k)
	}
	if err := validateName(name); err != nil {
		return fmt.Errorf("label key %q: %w", k, err)
	}
	return nil
}

// ValidateValue checks a label value: empty, or 1 to 63 characters that begin
// and end with an alphanumeric with only alphanumerics, '-', '_' and '.' in
// between.
func ValidateValue(v string) error {
	if v == "" {
		return nil
	}
	if err := validateName(v); err != nil {
		return fmt.Errorf("label value %q: %w", v, err)
	}
	return nil
}

// ValidateLabels checks every key and value of a label set that a user wants
// to set on a resource, including the reserved "hetzner.cloud/" prefix.
func ValidateLabels(labels map[string]string) error {
	var errs []error
	for k, v := range labels {
		if err := ValidateKey(k); err != nil {
			errs = append(errs, err)
		} else if strings.HasPrefix(k, ReservedPrefix) {
			errs = append(errs, fmt.Errorf("label key %q: prefix %q is reserved", k, ReservedPrefix))
		}
		if err := ValidateValue(v); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func validateName(s string) error {
	if len(s) > 63 {
		return errors.New("longer than 63 characters")
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return errors.New("must begin and end with an alphanumeric character")
	}
	for i := 0; i < len(s); i++ {
		if !isValueChar(s[i]) {
			return fmt.Errorf("invalid character %q", s[i])
		}
	}
	return nil
}

func validatePrefix(p string) error {
	if p == "" {
		return errors.New("prefix is empty")
	}
	if len(p) > 253 {
		return errors.New("prefix longer than 253 characters")
	}
	for _, label := range strings.Split(p, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("prefix %q is not a DNS subdomain", p)
		}
		if !isLowerAlnum(label[0]) || !isLowerAlnum(label[len(label)-1]) {
			return fmt.Errorf("prefix %q is not a DNS subdomain", p)
		}
		for i := 0; i < len(label); i++ {
			if !isLowerAlnum(label[i]) && label[i] != '-' {
				return fmt.Errorf("prefix %q is not a DNS subdomain", p)
			}
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}
