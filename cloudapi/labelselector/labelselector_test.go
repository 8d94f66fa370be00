package labelselector

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var parseCases = []struct {
	name string
	in   string
	want string // canonical String(); empty with wantErr
	err  bool
}{
	{name: "empty", in: "", want: ""},
	{name: "blank", in: "  ", want: ""},
	{name: "ref equals double", in: "k==v", want: "k=v"},
	{name: "ref equals single", in: "k=v", want: "k=v"},
	{name: "ref not equals", in: "k!=v", want: "k!=v"},
	{name: "ref exists", in: "k", want: "k"},
	{name: "ref not exists", in: "!k", want: "!k"},
	{name: "ref in", in: "k in (v1,v2,v3)", want: "k in (v1,v2,v3)"},
	{name: "ref notin", in: "k notin (v1,v2,v3)", want: "k notin (v1,v2,v3)"},
	{name: "ref combined", in: "k1==v,!k2", want: "k1=v,!k2"},
	{name: "ref example 1", in: "env=production,type!=database", want: "env=production,type!=database"},
	{name: "ref example 2", in: "env in (testing,staging)", want: "env in (testing,staging)"},
	{name: "ref example 3", in: "!type", want: "!type"},
	{name: "blanks everywhere", in: " env = prod , ! k ,x in ( a , b ) ", want: "env=prod,!k,x in (a,b)"},
	{name: "empty value", in: "k=", want: "k="},
	{name: "prefix key", in: "example.com/my=label", want: "example.com/my=label"},
	{name: "reserved prefix selectable", in: "hetzner.cloud/x", want: "hetzner.cloud/x"},
	{name: "in without blank", in: "k in(a)", want: "k in (a)"},
	{name: "dots dashes underscores", in: "a.b-c_d=e.f-g_h", want: "a.b-c_d=e.f-g_h"},
	{name: "trailing comma", in: "k=v,", err: true},
	{name: "leading comma", in: ",k", err: true},
	{name: "double comma", in: "a,,b", err: true},
	{name: "bad op", in: "k<v", err: true},
	{name: "bang only", in: "!", err: true},
	{name: "not exists with value", in: "!k=v", err: true},
	{name: "unterminated set", in: "k in (a,b", err: true},
	{name: "empty set", in: "k in ()", err: true},
	{name: "empty member", in: "k in (a,,b)", err: true},
	{name: "set without paren", in: "k in a", err: true},
	{name: "unknown word op", in: "k is (a)", err: true},
	{name: "value starts with dash", in: "k=-v", err: true},
	{name: "key ends with dot", in: "k.=v", err: true},
	{name: "two values", in: "k=a b", err: true},
	{name: "triple equals", in: "k===v", err: true},
	{name: "value too long", in: "k=" + strings.Repeat("a", 64), err: true},
	{name: "value 63", in: "k=" + strings.Repeat("a", 63), want: "k=" + strings.Repeat("a", 63)},
	{name: "name too long", in: strings.Repeat("a", 64), err: true},
	{name: "prefix uppercase", in: "Example.com/x", err: true},
	{name: "empty prefix", in: "/x", err: true},
	{name: "empty name", in: "example.com/", err: true},
	{name: "two slashes", in: "a/b/c", err: true},
	{name: "non ascii", in: "k=vä", err: true},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := Parse(tc.in)
			if tc.err {
				var se *SyntaxError
				require.ErrorAs(t, err, &se, "got selector %q", sel.String())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, sel.String())
		})
	}
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"env": "production", "service": "backend", "example.com/my": "label", "just-a-key": ""}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"env=production", true},
		{"env==production", true},
		{"env=staging", false},
		{"env!=staging", true},
		{"env!=production", false},
		{"missing!=x", true},
		{"env", true},
		{"missing", false},
		{"!missing", true},
		{"!env", false},
		{"env in (testing,production)", true},
		{"env in (testing,staging)", false},
		{"missing in (a)", false},
		{"env notin (testing,staging)", true},
		{"env notin (production)", false},
		{"missing notin (a)", true},
		{"just-a-key=", true},
		{"just-a-key", true},
		{"example.com/my=label", true},
		{"env=production,type!=database", true},
		{"env=production,service=frontend", false},
	}
	for _, tc := range tests {
		t.Run(tc.sel, func(t *testing.T) {
			got := MustParse(tc.sel).Matches(labels)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestValidateLabels(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		err    string
	}{
		{name: "reference example", labels: map[string]string{"environment": "development", "service": "backend", "example.com/my": "label", "just-a-key": ""}},
		{name: "reserved", labels: map[string]string{"hetzner.cloud/x": "y"}, err: "reserved"},
		{name: "bad value", labels: map[string]string{"k": "a b"}, err: "invalid character"},
		{name: "bad key", labels: map[string]string{"-k": "v"}, err: "alphanumeric"},
		{name: "long prefix", labels: map[string]string{strings.Repeat("a.", 127) + "a/x": "v"}, err: "253"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateLabels(tc.labels)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sel, err := Parse(in)
		if err != nil {
			return
		}
		out := sel.String()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", in, out, err)
		}
		if got := again.String(); got != out {
			t.Fatalf("unstable: %q -> %q -> %q", in, out, got)
		}
		assert.Equal(t, sel, again)
		_ = sel.Matches(map[string]string{"k": "v"})
	})
}

func BenchmarkParseMatch(b *testing.B) {
	labels := map[string]string{"env": "production", "role": "web"}
	for b.Loop() {
		sel, err := Parse("env=production,role in (web,api),!maintenance")
		if err != nil || !sel.Matches(labels) {
			b.Fatal("no match")
		}
	}
}
