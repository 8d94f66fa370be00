package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hc-agent/hc-agent/metrics"
	"github.com/hc-agent/hc-agent/netconf"
)

const alertsFile = "prometheus/hc-agent-alerts.yml"

// rtProtosFile names hc-agent's route protocol for iproute2; the package
// installs it as rtProtosDst.
const (
	rtProtosFile = "iproute2/hc-agent.conf"
	rtProtosDst  = "/etc/iproute2/rt_protos.d/hc-agent.conf"
)

// TestRouteProtocolName checks that the iproute2 file names exactly the
// protocol number netconf puts on its routes, in the "NUMBER NAME" format
// of rt_protos.
func TestRouteProtocolName(t *testing.T) {
	b, err := os.ReadFile(rtProtosFile)
	require.NoError(t, err)
	var entries [][]string
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		entries = append(entries, strings.Fields(l))
	}
	assert.Equal(t, [][]string{{strconv.Itoa(netconf.RouteProtocol), "hc-agent"}}, entries)
}

// TestAlertRules checks the example rules with promtool, and that every
// hcagent_ metric they use exists.
func TestAlertRules(t *testing.T) {
	rules, err := os.ReadFile(alertsFile)
	require.NoError(t, err)

	t.Run("metrics exist", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := metrics.New(reg, metrics.BuildInfo{})
		// Populate the vectors so that Gather lists them.
		m.ObserveReconcile(metrics.ComponentNetconf, 0, 0, nil)
		m.ObserveReconcile(metrics.ComponentNetconf, 0, 0, os.ErrClosed)
		m.ObserveAPIRequest("GET /x", 429)
		m.SetFloatingIP("192.0.2.1", true, true)
		m.SetGroup("g", "holder", 1, 1)
		m.ObserveMove("g", 0, "success")
		m.ObserveMetadata("summary", os.ErrClosed)
		mfs, err := reg.Gather()
		require.NoError(t, err)
		known := map[string]bool{}
		for _, mf := range mfs {
			known[mf.GetName()] = true
		}
		used := regexp.MustCompile(`hcagent_[a-z_]+`).FindAllString(string(rules), -1)
		require.NotEmpty(t, used)
		for _, name := range used {
			assert.True(t, known[name], "rules use unknown metric %s", name)
		}
	})

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; .ci/run installs it): skipping the rules lint")
	}
	for _, tc := range []struct {
		name    string
		content []byte
		wantOK  bool
	}{
		{"shipped rules", rules, true},
		{"broken expression is caught", bytes.Replace(rules, []byte("hcagent_metadata_blackholed == 1"), []byte("hcagent_metadata_blackholed == == 1"), 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "rules.yml")
			require.NoError(t, os.WriteFile(p, tc.content, 0o644))
			out, err := exec.Command(promtool, "check", "rules", p).CombinedOutput()
			if tc.wantOK {
				require.NoError(t, err, "promtool check rules:\n%s", out)
				assert.Contains(t, string(out), "SUCCESS")
			} else {
				require.Error(t, err, "promtool accepted a broken rule:\n%s", out)
			}
		})
	}
}

// TestScripts runs the maintainer scripts with a fake systemctl on PATH that
// records its calls. This machine has no systemd as PID 1 in the tests (and
// when it has, HC_AGENT_NO_START=1 is set), so nothing may be started.
func TestScripts(t *testing.T) {
	for _, s := range []string{"postinstall.sh", "preremove.sh", "postremove.sh"} {
		out, err := exec.Command("sh", "-n", filepath.Join("scripts", s)).CombinedOutput()
		require.NoError(t, err, "sh -n %s: %s", s, out)
	}
	tests := []struct {
		script string
		args   []string
		want   []string
	}{
		{"postinstall.sh", []string{"configure"}, []string{"enable hc-agent.service"}},
		{"postinstall.sh", []string{"configure", "0.0.9"}, []string{"enable hc-agent.service"}},
		{"postinstall.sh", []string{"1"}, []string{"enable hc-agent.service"}},
		{"postinstall.sh", []string{"abort-upgrade"}, nil},
		{"preremove.sh", []string{"remove"}, []string{"disable hc-agent.service"}},
		{"preremove.sh", []string{"0"}, []string{"disable hc-agent.service"}},
		{"preremove.sh", []string{"upgrade", "0.1.0"}, nil},
		{"preremove.sh", []string{"1"}, nil},
		{"postremove.sh", []string{"remove"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.script+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "calls")
			fake := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
			require.NoError(t, os.WriteFile(filepath.Join(dir, "systemctl"), []byte(fake), 0o755))
			cmd := exec.Command("sh", append([]string{filepath.Join("scripts", tt.script)}, tt.args...)...)
			cmd.Env = append(os.Environ(), "PATH="+dir+":/usr/bin:/bin", "HC_AGENT_NO_START=1")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			calls, _ := os.ReadFile(log)
			var got []string
			for l := range strings.Lines(string(calls)) {
				got = append(got, strings.TrimSpace(l))
			}
			if _, err := os.Stat("/run/systemd/system"); err == nil && tt.script != "postinstall.sh" {
				t.Skip("systemd runs as PID 1: the scripts also call stop/daemon-reload here")
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// repoRoot is the module root (the tests run in packaging/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	return root
}

func findNFPM() (string, bool) {
	if p, err := exec.LookPath("nfpm"); err == nil {
		return p, true
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "nfpm")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// binary builds hc-agent once per test run and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "hcagent-pkg")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "hc-agent")
		cmd := exec.Command("go", "build", "-trimpath", "-o", build.path, "./cmd/hc-agent")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.out, build.err = cmd.CombinedOutput()
	})
	require.NoError(t, build.err, "go build: %s", build.out)
	return build.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// buildPackage builds the hc-agent binary and the package of the given kind
// (deb or rpm) from a copy of the files nfpm.yaml names, and returns its path.
func buildPackage(t *testing.T, nfpm, kind string) string {
	t.Helper()
	root := repoRoot(t)
	work := t.TempDir()
	bin := binary(t)
	require.NoError(t, os.Mkdir(filepath.Join(work, "bin"), 0o755))
	out, err := exec.Command("cp", bin, filepath.Join(work, "bin", "hc-agent")).CombinedOutput()
	require.NoError(t, err, "copy binary: %s", out)
	for _, d := range []string{"systemd", "packaging"} {
		out, err := exec.Command("cp", "-r", filepath.Join(root, d), work).CombinedOutput()
		require.NoError(t, err, "copy %s: %s", d, out)
	}
	dist := filepath.Join(work, "dist")
	require.NoError(t, os.Mkdir(dist, 0o755))
	cmd := exec.Command(nfpm, "package", "--config", "packaging/nfpm.yaml", "--packager", kind, "--target", dist)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PKG_VERSION=0.0.0~test", "ARCH="+runtime.GOARCH)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "nfpm: %s", out)
	pkgs, err := filepath.Glob(filepath.Join(dist, "*."+kind))
	require.NoError(t, err)
	require.Len(t, pkgs, 1)
	return pkgs[0]
}

func TestBuildRPM(t *testing.T) {
	nfpm, ok := findNFPM()
	if !ok {
		t.Skip("nfpm not installed (go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2): skipping the package build")
	}
	pkg := buildPackage(t, nfpm, "rpm")
	fi, err := os.Stat(pkg)
	require.NoError(t, err)
	assert.Positive(t, fi.Size())
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HC_AGENT_NO_START=1", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

func installed() bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "hc-agent").Output()
	return err == nil && strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed")
}

// TestDebInstall builds the .deb, installs it on this machine with dpkg -i,
// checks the files, the unit, the conffile and the enablement, reinstalls it
// over an edited configuration (which must survive), and purges it.
// HC_AGENT_NO_START=1 keeps the postinst from starting the agent, which must
// never run against this machine's own network.
func TestDebInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: dpkg -i needs root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("skipping: dpkg not installed")
	}
	nfpm, ok := findNFPM()
	if !ok {
		t.Skip("nfpm not installed (go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2): skipping the package install")
	}
	if installed() {
		t.Skip("skipping: a package hc-agent is already installed on this machine; not touching it")
	}
	for _, p := range []string{"/etc/hc-agent", "/usr/bin/hc-agent", "/var/lib/hc-agent", rtProtosDst} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("skipping: %s exists outside any package; not touching it", p)
		}
	}
	deb := buildPackage(t, nfpm, "deb")
	t.Cleanup(func() {
		if installed() {
			exec.Command("dpkg", "--purge", "hc-agent").Run()
		}
	})

	run(t, "dpkg", "-i", deb)
	root := repoRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "systemd", "hc-agent.service"))
	require.NoError(t, err)
	conf, err := os.ReadFile(filepath.Join(root, "packaging", "config.yaml"))
	require.NoError(t, err)

	got, err := os.ReadFile("/usr/lib/systemd/system/hc-agent.service")
	require.NoError(t, err)
	assert.Equal(t, string(unit), string(got))
	got, err = os.ReadFile("/etc/hc-agent/config.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(conf), string(got))
	fi, err := os.Stat("/usr/bin/hc-agent")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	fi, err = os.Stat("/var/lib/hc-agent")
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	// The unit's ConfigurationDirectoryMode: systemd warns on every start
	// when the directory has another mode.
	mode := regexp.MustCompile(`(?m)^ConfigurationDirectoryMode=(\d+)$`).FindSubmatch(unit)
	require.NotNil(t, mode, "unit has no ConfigurationDirectoryMode")
	wantMode, err := strconv.ParseUint(string(mode[1]), 8, 32)
	require.NoError(t, err)
	fi, err = os.Stat("/etc/hc-agent")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(wantMode), fi.Mode().Perm(), "/etc/hc-agent against ConfigurationDirectoryMode")
	rtProtos, err := os.ReadFile(filepath.Join(root, "packaging", rtProtosFile))
	require.NoError(t, err)
	got, err = os.ReadFile(rtProtosDst)
	require.NoError(t, err)
	assert.Equal(t, string(rtProtos), string(got))
	checkRouteProtocolName(t)
	out := run(t, "/usr/bin/hc-agent", "version")
	assert.NotEmpty(t, out)
	conffiles := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "hc-agent")
	assert.Contains(t, conffiles, "/etc/hc-agent/config.yaml")
	assert.Contains(t, conffiles, rtProtosDst)
	files := strings.Fields(run(t, "dpkg", "-L", "hc-agent"))
	sort.Strings(files)
	for _, f := range []string{"/usr/bin/hc-agent", "/usr/lib/systemd/system/hc-agent.service", "/etc/hc-agent/config.yaml", "/usr/share/doc/hc-agent/examples/prometheus-alerts.yml",
		"/usr/share/doc/hc-agent/examples/grafana-dashboard.json", "/usr/share/doc/hc-agent/examples/web-config.yml", rtProtosDst} {
		assert.Contains(t, files, f)
	}
	const wants = "/etc/systemd/system/multi-user.target.wants/hc-agent.service"
	haveSystemctl := false
	if _, err := exec.LookPath("systemctl"); err == nil {
		haveSystemctl = true
		_, err := os.Lstat(wants)
		assert.NoError(t, err, "postinst did not enable the service")
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			out, _ := exec.Command("systemctl", "is-active", "hc-agent.service").Output()
			assert.NotEqual(t, "active", strings.TrimSpace(string(out)), "postinst started the service")
		}
	}

	// An edited configuration survives reinstalling (config|noreplace).
	edited := append(append([]byte{}, conf...), "# edited by the operator\n"...)
	require.NoError(t, os.WriteFile("/etc/hc-agent/config.yaml", edited, 0o640))
	run(t, "dpkg", "-i", "--force-confold", deb)
	got, err = os.ReadFile("/etc/hc-agent/config.yaml")
	require.NoError(t, err)
	assert.Equal(t, string(edited), string(got))

	run(t, "dpkg", "--purge", "hc-agent")
	assert.False(t, installed())
	for _, p := range []string{"/usr/bin/hc-agent", "/usr/lib/systemd/system/hc-agent.service", "/etc/hc-agent", "/var/lib/hc-agent", rtProtosDst} {
		_, err := os.Lstat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s left after purge", p)
	}
	if haveSystemctl {
		_, err := os.Lstat(wants)
		assert.ErrorIs(t, err, os.ErrNotExist, "enablement symlink left after purge")
	}
}

// netnsSeq makes the names of the namespaces this test creates unique.
var netnsSeq atomic.Int64

// checkRouteProtocolName adds a route with hc-agent's protocol number in a
// network namespace it creates (never in this machine's own) and checks
// that `ip route` prints the installed name for it.
func checkRouteProtocolName(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Log("ip (iproute2) not installed: not checking how ip route prints the protocol")
		return
	}
	ns := fmt.Sprintf("hcpkg%d-%d", os.Getpid(), netnsSeq.Add(1))
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", ns, "route", "add", "192.0.2.0/24", "dev", "lo", "proto", strconv.Itoa(netconf.RouteProtocol))
	out := run(t, "ip", "-n", ns, "route", "show", "192.0.2.0/24")
	assert.Contains(t, out, "proto hc-agent", "ip route does not name protocol %d", netconf.RouteProtocol)
}
