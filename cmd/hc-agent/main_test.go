package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs one command line in-process with env as the whole
// environment. Tests that load a configuration always pass --config, so
// nothing of this machine is read.
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := newEnv(&out, &errb, func(k string) string { return env[k] })
	code := execute(t.Context(), e, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// writeFile writes content to a new file in a temporary directory.
func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func TestHelp(t *testing.T) {
	var globalWant []string
	for _, c := range commands() {
		globalWant = append(globalWant, "  "+c.name, c.summary)
	}
	globalWant = append(globalWant, "Usage: hc-agent [global flags] COMMAND", "--config PATH", "--log-level LEVEL", "--log-format FORMAT",
		"(default /etc/hc-agent/config.yaml)", "(default: log.level of the config, info)", "(default: log.format of the config, text)",
		"HCLOUD_TOKEN", "HCLOUD_ENDPOINT", "Exit status: 0 on success, 1 on an error, 2 on a usage error, 78 (EX_CONFIG)\non a configuration error.")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "--help", args: []string{"--help"}, want: globalWant},
		{name: "-h", args: []string{"-h"}, want: globalWant},
		{name: "help", args: []string{"help"}, want: globalWant},
		{name: "metadata --help", args: []string{"metadata", "--help"},
			want: []string{"Usage: hc-agent metadata [--json]", "[KEY]", "--json", "--endpoint URL", "--attempts N", "--timeout D", "public-ipv4", "Global flags:", "--config PATH"}},
		{name: "help metadata", args: []string{"help", "metadata"}, want: []string{"Usage: hc-agent metadata [--json]"}},
		{name: "check-config --help", args: []string{"check-config", "-h"}, want: []string{"Usage: hc-agent check-config [--print]", "--print", "HCLOUD_TOKEN"}},
		{name: "run --help after a global flag", args: []string{"--config", "/nonexistent", "run", "--help"}, want: []string{"Usage: hc-agent run\n\nRuns the agent", "SIGTERM"}},
		{name: "version --help", args: []string{"version", "--help"}, want: []string{"Usage: hc-agent version\n\nPrints", "commit"}},
		{name: "prepare-image --help", args: []string{"prepare-image", "--help"}, want: []string{"Usage: hc-agent prepare-image [--dry-run]\n\n", "netconf-owned.json", "floatingip-owned.json", "systemctl stop hc-agent"}},
		{name: "status --help", args: []string{"status", "--help"}, want: []string{"--addr HOST:PORT", "(default: metrics.listen of the config)"}},
	}
	for _, c := range commands() {
		tests = append(tests, struct {
			name string
			args []string
			want []string
		}{name: "every command: " + c.name, args: []string{c.name, "--help"}, want: []string{"Usage: hc-agent " + c.name, "Global flags:"}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, tc.args...)
			assert.Equal(t, 0, r.code)
			assert.Empty(t, r.stderr)
			// Wrapped text may break anywhere between words.
			flat := strings.Join(strings.Fields(r.stdout), " ")
			for _, w := range tc.want {
				assert.True(t, strings.Contains(r.stdout, w) || strings.Contains(flat, w), "help lacks %q:\n%s", w, r.stdout)
			}
			checkHelpLayout(t, r.stdout)
		})
	}
}

// checkHelpLayout checks what every help output shares: a usage line of its
// own followed by a blank line, and no line wider than helpWidth.
func checkHelpLayout(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 3, out)
	assert.True(t, strings.HasPrefix(lines[0], "Usage: hc-agent"), "first line: %q", lines[0])
	assert.Empty(t, lines[1], "the usage line must stand alone: %q", lines[0]+"\n"+lines[1])
	for _, l := range lines {
		assert.LessOrEqual(t, len(l), helpWidth, "help line too wide: %q", l)
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		text  string
		width int
		want  []string
	}{
		{text: "", width: 10, want: []string{""}},
		{text: "short", width: 10, want: []string{"short"}},
		{text: "one two three", width: 7, want: []string{"one two", "three"}},
		{text: "exactly10c next", width: 10, want: []string{"exactly10c", "next"}},
		{text: "a /very/long/path/that/does/not/fit b", width: 10, want: []string{"a", "/very/long/path/that/does/not/fit", "b"}},
		{text: "  spaces   collapse ", width: 80, want: []string{"spaces collapse"}},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			assert.Equal(t, tc.want, wrap(tc.text, tc.width))
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr []string
	}{
		{name: "no command", args: nil, wantStderr: []string{"Usage: hc-agent", "Commands:"}},
		{name: "unknown command", args: []string{"frobnicate"}, wantStderr: []string{`hc-agent: unknown command "frobnicate"`, "hc-agent --help"}},
		{name: "unknown global flag", args: []string{"--verbose", "version"}, wantStderr: []string{"hc-agent: flag provided but not defined: -verbose"}},
		{name: "bad log level", args: []string{"--log-level", "loud", "version"}, wantStderr: []string{`invalid value "loud" for flag -log-level: must be debug, info, warn or error`}},
		{name: "bad log format after the command", args: []string{"version", "--log-format", "xml"}, wantStderr: []string{"hc-agent version:", "must be text or json", "Run 'hc-agent version --help'"}},
		{name: "unknown command flag", args: []string{"check-config", "--bogus"}, wantStderr: []string{"hc-agent check-config: flag provided but not defined: -bogus"}},
		{name: "version takes no args", args: []string{"version", "now"}, wantStderr: []string{`hc-agent version: takes no arguments, got "now"`}},
		{name: "run takes no args", args: []string{"run", "now"}, wantStderr: []string{`hc-agent run: takes no arguments`}},
		{name: "metadata takes one key", args: []string{"metadata", "hostname", "region"}, wantStderr: []string{"takes at most one KEY"}},
		{name: "metadata negative attempts", args: []string{"metadata", "--attempts", "-1", "hostname"}, wantStderr: []string{"must not be negative"}},
		{name: "help for an unknown command", args: []string{"help", "nope"}, wantStderr: []string{`hc-agent help: unknown command "nope"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, tc.args...)
			assert.Equal(t, 2, r.code)
			assert.Empty(t, r.stdout)
			for _, w := range tc.wantStderr {
				assert.Contains(t, r.stderr, w)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	r := runCLI(t, nil, "version")
	assert.Equal(t, 0, r.code)
	assert.Empty(t, r.stderr)
	assert.Regexp(t, `^hc-agent \S+ \(commit \S+, go\S+\)\n$`, r.stdout)
	assert.Contains(t, r.stdout, version)
	assert.Contains(t, r.stdout, runtime.Version())
}

func TestVersionString(t *testing.T) {
	info := func(settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	noInfo := func() (*debug.BuildInfo, bool) { return nil, false }
	gov := runtime.Version()
	tests := []struct {
		name, version, commit string
		info                  func() (*debug.BuildInfo, bool)
		want                  string
	}{
		{name: "ldflags", version: "v1.2.3", commit: "abc1234", info: info("vcs.revision", "ffffffffffffffff"), want: "hc-agent v1.2.3 (commit abc1234, " + gov + ")"},
		{name: "vcs revision", version: "dev", commit: "unknown", info: info("vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), want: "hc-agent dev (commit 0123456789ab, " + gov + ")"},
		{name: "dirty tree", version: "dev", commit: "unknown", info: info("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), want: "hc-agent dev (commit 0123456789ab-dirty, " + gov + ")"},
		{name: "nothing known", version: "dev", commit: "unknown", info: noInfo, want: "hc-agent dev (commit unknown, " + gov + ")"},
		{name: "no vcs in build info", version: "dev", commit: "", info: info("-trimpath", "true"), want: "hc-agent dev (commit unknown, " + gov + ")"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, versionString(tc.version, tc.commit, tc.info))
		})
	}
}

func TestOneLine(t *testing.T) {
	assert.Equal(t, "a; b", oneLine("a\nb\n"))
	assert.False(t, strings.Contains(oneLine("x\ny\nz"), "\n"))
}

func TestFlagsFirst(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{args: nil, want: nil},
		{args: []string{"hostname"}, want: []string{"--", "hostname"}},
		{args: []string{"hostname", "--json"}, want: []string{"--json", "--", "hostname"}},
		{args: []string{"hostname", "--endpoint", "http://x", "--json"}, want: []string{"--endpoint", "http://x", "--json", "--", "hostname"}},
		{args: []string{"--endpoint=http://x", "a"}, want: []string{"--endpoint=http://x", "--", "a"}},
		{args: []string{"--json=false", "a", "--", "--json"}, want: []string{"--json=false", "--", "a", "--json"}},
		{args: []string{"a", "--unknown", "b"}, want: []string{"--unknown", "--", "a", "b"}},
		{args: []string{"-", "--endpoint"}, want: []string{"--endpoint", "--", "-"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.Bool("json", false, "")
			fs.String("endpoint", "", "")
			assert.Equal(t, tc.want, flagsFirst(fs, tc.args))
		})
	}
}
