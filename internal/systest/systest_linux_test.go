// Package systest boots a Debian root under a real systemd with
// systemd-nspawn, installs the .deb and checks what only a real systemd
// shows: READY and STATUS=, the watchdog, the hardening, reload, stop, a
// configuration error (exit 78, the reason in systemctl status) and purge.
//
// It runs with `sudo make systest` (which builds the package first), not in
// `make test`: it needs root, systemd-nspawn and debootstrap, and the first
// run downloads a Debian root (cached in $HCAGENT_SYSTEST_CACHE, default
// /var/cache/hc-agent-systest, and reused). The container has a network
// namespace of its own that the test creates, with a metadata fake at
// 169.254.169.254 inside it: nothing leaves the machine but debootstrap's
// download.
package systest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/hc-agent/hc-agent/internal/nstest"
	"github.com/hc-agent/hc-agent/metadata"
	"github.com/hc-agent/hc-agent/metadata/metadatatest"
)

const (
	envEnable = "HCAGENT_SYSTEST"       // 1 runs the test
	envCache  = "HCAGENT_SYSTEST_CACHE" // where the Debian root is cached
	envDeb    = "HCAGENT_SYSTEST_DEB"   // the .deb to install (default: newest in dist/)
	suite     = "bookworm"              // Debian 12, systemd 252
	// instanceID is the server the metadata fake describes.
	instanceID = 4711
)

// step logs how long each part took, for the report of `make systest`.
func step(t *testing.T, name string) func() {
	start := time.Now()
	return func() { t.Logf("timing: %-28s %v", name, time.Since(start).Round(time.Millisecond)) }
}

func TestSystemd(t *testing.T) {
	if os.Getenv(envEnable) != "1" {
		t.Skipf("skipping the systemd-nspawn system test: run `sudo make systest` (%s=1)", envEnable)
	}
	nstest.RequireRoot(t)
	for _, tool := range []string{"systemd-nspawn", "debootstrap", "nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (Debian packages systemd-container, debootstrap, util-linux)", tool)
		}
	}
	deb := findDeb(t)
	total := step(t, "total")
	defer total()

	done := step(t, "debian root (cached)")
	base := debianRoot(t)
	done()

	c := boot(t, base, deb)
	c.checks(t)
}

// findDeb returns the .deb to install: $HCAGENT_SYSTEST_DEB or the newest
// dist/hc-agent_*.deb of the repository (make package).
func findDeb(t *testing.T) string {
	if p := os.Getenv(envDeb); p != "" {
		return p
	}
	matches, err := filepath.Glob("../../dist/hc-agent_*.deb")
	require.NoError(t, err)
	require.NotEmpty(t, matches, "no dist/hc-agent_*.deb: run make package (make systest does)")
	sort.Slice(matches, func(i, j int) bool {
		a, _ := os.Stat(matches[i])
		b, _ := os.Stat(matches[j])
		return a.ModTime().After(b.ModTime())
	})
	p, err := filepath.Abs(matches[0])
	require.NoError(t, err)
	return p
}

// debianRoot returns the cached Debian root, making it with debootstrap
// when it is missing. It is built in a temporary directory and renamed, so
// an interrupted run leaves no half root behind; the test never writes to
// it (the container runs on an overlay).
func debianRoot(t *testing.T) string {
	cache := os.Getenv(envCache)
	if cache == "" {
		cache = "/var/cache/hc-agent-systest"
	}
	root := filepath.Join(cache, suite+"-root")
	if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/systemd")); err == nil {
		return root
	}
	require.NoError(t, os.MkdirAll(cache, 0o755))
	tmp, err := os.MkdirTemp(cache, suite+"-root.tmp-")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	start := time.Now()
	out, err := exec.Command("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv", suite, tmp, aptMirror(t)).CombinedOutput()
	require.NoError(t, err, "debootstrap:\n%s", tail(string(out), 30))
	t.Logf("timing: %-28s %v", "debootstrap (first run)", time.Since(start).Round(time.Second))
	require.NoError(t, os.Rename(tmp, root))
	return root
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// container is a booted nspawn container.
type container struct {
	name   string
	root   string // the merged overlay
	nspawn *exec.Cmd
	exited chan struct{}
	leader int // PID (on the host) of the container's systemd
	md     *metadatatest.Server
}

// boot mounts an overlay over base, creates a network namespace with the
// metadata fake, and boots the root with systemd-nspawn in a cgroup of its
// own. Everything is undone when the test ends.
func boot(t *testing.T, base, deb string) *container {
	done := step(t, "boot to running")
	defer done()
	name := fmt.Sprintf("hcsystest-%d", os.Getpid())
	work := t.TempDir()
	c := &container{name: name, root: filepath.Join(work, "merged"), exited: make(chan struct{})}
	for _, d := range []string{"upper", "work", "merged"} {
		require.NoError(t, os.Mkdir(filepath.Join(work, d), 0o755))
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base, filepath.Join(work, "upper"), filepath.Join(work, "work"))
	require.NoError(t, syscall.Mount("overlay", c.root, "overlay", 0, opts), "mount overlay")
	t.Cleanup(func() {
		if err := syscall.Unmount(c.root, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount overlay %s: %v", c.root, err)
		}
	})
	// The package under test, inside the container.
	b, err := os.ReadFile(deb)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(c.root, "root/hc-agent.deb"), b, 0o644))

	ns, h := nstest.New(t)
	c.md = metadataFake(t, ns, h)

	cg := ownCgroup(t, name)
	t.Cleanup(func() {
		// nspawn writes this on a host without systemd as PID 1 and never
		// removes it.
		os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", name))
	})

	// The network namespace is this process's fd: nspawn opens it by path.
	nsPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
	args := []string{
		"--quiet", "--boot", "--register=no", "--keep-unit", "--console=passive",
		"--directory=" + c.root, "--machine=" + name, "--network-namespace-path=" + nsPath,
	}
	// A shell puts itself into the container's cgroup, then becomes nspawn.
	c.nspawn = exec.Command("sh", append([]string{"-c", `for d in $CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec systemd-nspawn "$@"`, "sh"}, args...)...)
	c.nspawn.Env = append(os.Environ(), "CGROUPS="+strings.Join(cg, " "))
	logFile, err := os.Create(filepath.Join(work, "nspawn.log"))
	require.NoError(t, err)
	c.nspawn.Stdout, c.nspawn.Stderr = logFile, logFile
	require.NoError(t, c.nspawn.Start())
	go func() { // exits when nspawn does
		c.nspawn.Wait()
		logFile.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.shutdown(t, filepath.Join(work, "nspawn.log")) })

	c.leader = waitLeader(t, c)
	// Wait for the boot to finish: is-system-running answers running or
	// degraded once every start job is done.
	waitFor(t, 60*time.Second, "container boot", func() (bool, string) {
		out, _ := c.exec("systemctl", "is-system-running")
		s := strings.TrimSpace(out)
		return s == "running" || s == "degraded", s
	})
	return c
}

// ownCgroup creates a cgroup for the container in every mounted hierarchy
// that systemd needs (name=systemd and the unified one) and returns the
// directories; nspawn with --keep-unit runs in the caller's cgroup, which
// must not be shared with anything else.
func ownCgroup(t *testing.T, name string) []string {
	var dirs []string
	for _, h := range []string{"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(h, name)
		require.NoError(t, os.Mkdir(d, 0o755))
		dirs = append(dirs, d)
		if h == "/sys/fs/cgroup" {
			break // pure cgroup v2
		}
	}
	require.NotEmpty(t, dirs, "no cgroup hierarchy for systemd found")
	t.Cleanup(func() {
		for _, d := range dirs {
			removeCgroup(t, d)
		}
	})
	return dirs
}

// removeCgroup removes a cgroup and the ones the container's systemd made
// below it, deepest first.
func removeCgroup(t *testing.T, dir string) {
	var all []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			all = append(all, p)
		}
		return nil
	})
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	for _, d := range all {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove cgroup %s: %v", d, err)
		}
	}
}

// waitLeader finds the container's init: the child of nspawn's child.
func waitLeader(t *testing.T, c *container) int {
	var leader int
	waitFor(t, 30*time.Second, "container init", func() (bool, string) {
		for _, child := range children(c.nspawn.Process.Pid) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child))
			if strings.TrimSpace(string(comm)) == "systemd" {
				leader = child
				return true, ""
			}
			for _, gc := range children(child) {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", gc))
				if strings.TrimSpace(string(comm)) == "systemd" {
					leader = gc
					return true, ""
				}
			}
		}
		return false, "no systemd below nspawn"
	})
	return leader
}

func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// exec runs a command inside the container (all its namespaces) and
// returns its combined output.
func (c *container) exec(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(c.leader), "--all", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *container) mustExec(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.exec(args...)
	require.NoError(t, err, "%s:\n%s", strings.Join(args, " "), out)
	return out
}

// show returns systemctl show properties of the hc-agent unit.
func (c *container) show(t *testing.T, props ...string) map[string]string {
	t.Helper()
	out := c.mustExec(t, "systemctl", "show", "hc-agent.service", "--property="+strings.Join(props, ","))
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// shutdown powers the container off (SIGTERM to nspawn asks its systemd to
// halt) and kills it if that takes too long.
func (c *container) shutdown(t *testing.T, log string) {
	select {
	case <-c.exited:
	default:
		c.nspawn.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("container did not halt within 20 s; killing it")
			c.nspawn.Process.Kill()
			<-c.exited
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(log)
		t.Logf("nspawn output:\n%s", tail(string(b), 40))
	}
}

// waitFor polls cond every 100 ms: the container is another system, with no
// event to wait on from here.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last: %s)", what, d, last)
}

// metadataFake serves the metadata of instanceID at 169.254.169.254:80
// inside ns (on its loopback), from a listener opened in ns.
func metadataFake(t *testing.T, ns netns.NsHandle, h *netlink.Handle) *metadatatest.Server {
	lo, err := h.LinkByName("lo")
	require.NoError(t, err)
	addr, err := netlink.ParseAddr("169.254.169.254/32")
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(lo, addr))

	md := metadatatest.NewUnstarted()
	md.SetSummary(metadata.Summary{
		Hostname: "systest", InstanceID: instanceID, PublicIPv4: netip.MustParseAddr("192.0.2.10"),
		AvailabilityZone: "fsn1-dc14", Region: "eu-central",
	})
	md.SetPrivateNetworks(nil)

	lnc := make(chan net.Listener, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ln, err := net.Listen("tcp", "169.254.169.254:80")
		if err != nil {
			errc <- err
			return
		}
		lnc <- ln
	}()
	var ln net.Listener
	select {
	case err := <-errc:
		t.Fatalf("listen for metadata in the container's namespace: %v", err)
	case ln = <-lnc:
	}
	srv := &http.Server{Handler: md, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) // exits on Close below
	t.Cleanup(func() {
		srv.Close()
		md.Close()
	})
	return md
}

// checks runs the scenario on a booted container, in order: each step
// starts from what the one before left.
func (c *container) checks(t *testing.T) {
	t.Run("install starts the agent and it reaches READY", func(t *testing.T) {
		done := step(t, "dpkg -i and READY")
		out := c.mustExec(t, "dpkg", "-i", "/root/hc-agent.deb")
		assert.NotContains(t, out, "failed", out)
		waitFor(t, 30*time.Second, "hc-agent active", func() (bool, string) {
			p := c.show(t, "ActiveState", "SubState")
			return p["ActiveState"] == "active", p["ActiveState"] + "/" + p["SubState"]
		})
		done()
		p := c.show(t, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "StatusText", "NRestarts")
		start, _ := strconv.ParseInt(p["ExecMainStartTimestampMonotonic"], 10, 64)
		ready, _ := strconv.ParseInt(p["ActiveEnterTimestampMonotonic"], 10, 64)
		t.Logf("timing: %-28s %v", "exec to READY=1", time.Duration(ready-start)*time.Microsecond)
		assert.NotEmpty(t, p["StatusText"], "no STATUS= line")
		t.Logf("STATUS=%s", p["StatusText"])
		assert.Equal(t, "0", p["NRestarts"])
		fi := c.mustExec(t, "stat", "-c", "%a", "/etc/hc-agent")
		assert.Equal(t, "750", strings.TrimSpace(fi), "/etc/hc-agent mode")
	})

	t.Run("journal has no warning from systemd or a hardening denial", func(t *testing.T) {
		out := c.mustExec(t, "journalctl", "--no-pager", "-o", "cat", "-b")
		for _, bad := range []string{"Permission denied", "Operation not permitted", "mode 0755", "hc-agent.service:"} {
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, bad) && strings.Contains(strings.ToLower(l), "hc-agent") {
					t.Errorf("journal: %s", l)
				}
			}
		}
	})

	t.Run("hardening score", func(t *testing.T) {
		out, _ := c.exec("systemd-analyze", "security", "--no-pager", "hc-agent.service")
		var score string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "Overall exposure level") {
				score = strings.TrimSpace(l)
			}
		}
		require.NotEmpty(t, score, "systemd-analyze security:\n%s", tail(out, 10))
		t.Logf("systemd-analyze security: %s", score)
	})

	t.Run("upgrade keeps the edited config and restarts", func(t *testing.T) {
		c.mustExec(t, "sh", "-c", "echo '# edited by the operator' >> /etc/hc-agent/config.yaml")
		before := c.show(t, "MainPID")["MainPID"]
		c.mustExec(t, "dpkg", "-i", "--force-confold", "/root/hc-agent.deb")
		conf := c.mustExec(t, "tail", "-n", "1", "/etc/hc-agent/config.yaml")
		assert.Equal(t, "# edited by the operator\n", conf)
		waitFor(t, 30*time.Second, "hc-agent active after upgrade", func() (bool, string) {
			p := c.show(t, "ActiveState", "MainPID")
			return p["ActiveState"] == "active" && p["MainPID"] != before, fmt.Sprint(p)
		})
	})

	t.Run("reload keeps the process", func(t *testing.T) {
		before := c.show(t, "MainPID")["MainPID"]
		done := step(t, "systemctl reload")
		out, err := c.exec("systemctl", "reload", "hc-agent.service")
		done()
		assert.NoError(t, err, out)
		p := c.show(t, "MainPID", "ActiveState", "NRestarts")
		assert.Equal(t, before, p["MainPID"], "reload restarted the agent")
		assert.Equal(t, "active", p["ActiveState"])
	})

	t.Run("reload refuses an invalid config and keeps running", func(t *testing.T) {
		before := c.show(t, "MainPID")["MainPID"]
		c.mustExec(t, "cp", "/etc/hc-agent/config.yaml", "/root/config.yaml.orig")
		c.mustExec(t, "sh", "-c", "printf 'log:\\n  colour: true\\n' > /etc/hc-agent/config.yaml")
		out, err := c.exec("systemctl", "reload", "hc-agent.service")
		assert.Error(t, err, "systemctl reload accepted an invalid config: %s", out)
		p := c.show(t, "MainPID", "ActiveState", "StatusText")
		assert.Equal(t, before, p["MainPID"])
		assert.Equal(t, "active", p["ActiveState"])
		assert.Contains(t, p["StatusText"], "reload refused")
		status, _ := c.exec("systemctl", "status", "--no-pager", "--lines=10", "hc-agent.service")
		assert.Contains(t, status, "log.colour: unknown key", status)
		c.mustExec(t, "cp", "/root/config.yaml.orig", "/etc/hc-agent/config.yaml")
		c.mustExec(t, "systemctl", "reload", "hc-agent.service")
	})

	t.Run("watchdog restarts a hung agent with a short trace", func(t *testing.T) {
		// A drop-in shortens the watchdog so that the test does not wait
		// 30 s.
		c.mustExec(t, "mkdir", "-p", "/etc/systemd/system/hc-agent.service.d")
		c.mustExec(t, "sh", "-c", "printf '[Service]\\nWatchdogSec=2s\\nTimeoutAbortSec=5s\\n' > /etc/systemd/system/hc-agent.service.d/systest.conf")
		c.mustExec(t, "systemctl", "daemon-reload")
		c.mustExec(t, "systemctl", "restart", "hc-agent.service")
		waitFor(t, 30*time.Second, "hc-agent active", func() (bool, string) {
			p := c.show(t, "ActiveState")
			return p["ActiveState"] == "active", p["ActiveState"]
		})
		p := c.show(t, "MainPID", "NRestarts")
		restarts, _ := strconv.Atoi(p["NRestarts"])
		cursor := strings.TrimSpace(c.mustExec(t, "sh", "-c", "journalctl --no-pager -n 0 --show-cursor | sed -n 's/^-- cursor: //p'"))
		done := step(t, "SIGSTOP to restart")
		c.mustExec(t, "systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", "hc-agent.service")
		waitFor(t, 30*time.Second, "watchdog restart", func() (bool, string) {
			q := c.show(t, "NRestarts", "ActiveState", "MainPID")
			n, _ := strconv.Atoi(q["NRestarts"])
			return n > restarts && q["ActiveState"] == "active" && q["MainPID"] != p["MainPID"], fmt.Sprintf("%v", q)
		})
		done()
		log := c.mustExec(t, "journalctl", "--no-pager", "-o", "cat", "-u", "hc-agent.service", "--after-cursor="+cursor)
		assert.Contains(t, log, "Watchdog timeout")
		lines := strings.Count(log, "\n")
		goroutines := strings.Count(log, "\ngoroutine ")
		t.Logf("watchdog kill: %d journal lines, %d goroutine stacks", lines, goroutines)
		assert.LessOrEqual(t, goroutines, 2, "the journal has the whole goroutine dump:\n%s", tail(log, 20))
		c.mustExec(t, "rm", "/etc/systemd/system/hc-agent.service.d/systest.conf")
		c.mustExec(t, "systemctl", "daemon-reload")
	})

	t.Run("stop", func(t *testing.T) {
		done := step(t, "systemctl stop")
		c.mustExec(t, "systemctl", "stop", "hc-agent.service")
		done()
		p := c.show(t, "ActiveState", "Result")
		assert.Equal(t, "inactive", p["ActiveState"])
		assert.Equal(t, "success", p["Result"])
	})

	t.Run("a configuration error fails the unit once with the reason", func(t *testing.T) {
		c.mustExec(t, "cp", "/etc/hc-agent/config.yaml", "/root/config.yaml.orig")
		c.mustExec(t, "sh", "-c", "printf 'log:\\n  level: info\\n  colour: true\\n' > /etc/hc-agent/config.yaml")
		c.mustExec(t, "systemctl", "reset-failed", "hc-agent.service")
		c.exec("systemctl", "start", "hc-agent.service") // fails: Type=notify sees the exit
		waitFor(t, 30*time.Second, "hc-agent failed", func() (bool, string) {
			p := c.show(t, "ActiveState")
			return p["ActiveState"] == "failed", p["ActiveState"]
		})
		p := c.show(t, "ExecMainStatus", "NRestarts", "Result")
		assert.Equal(t, "78", p["ExecMainStatus"])
		assert.Equal(t, "0", p["NRestarts"], "restarted on a configuration error")
		status, _ := c.exec("systemctl", "status", "--no-pager", "--lines=10", "hc-agent.service")
		assert.Contains(t, status, "log.colour: unknown key", status)
		assert.NotContains(t, status, "Start request repeated too quickly")
		c.mustExec(t, "cp", "/root/config.yaml.orig", "/etc/hc-agent/config.yaml")
		c.mustExec(t, "systemctl", "reset-failed", "hc-agent.service")
	})

	t.Run("purge leaves nothing", func(t *testing.T) {
		c.mustExec(t, "systemctl", "start", "hc-agent.service")
		done := step(t, "dpkg --purge")
		c.mustExec(t, "dpkg", "--purge", "hc-agent")
		done()
		for _, p := range []string{"/usr/bin/hc-agent", "/usr/lib/systemd/system/hc-agent.service", "/etc/hc-agent", "/var/lib/hc-agent", "/run/hc-agent"} {
			_, err := c.exec("test", "!", "-e", p)
			assert.NoError(t, err, "%s left after purge", p)
		}
		out, _ := c.exec("systemctl", "is-active", "hc-agent.service")
		assert.NotEqual(t, "active", strings.TrimSpace(out))
	})
}

// aptMirror is the Debian archive this machine's apt uses (the first URIs
// of a deb822 source in /etc/apt/sources.list.d that does not end in
// -security, or the first "deb" line of /etc/apt/sources.list), so that
// debootstrap fetches from where apt-get install already works.
func aptMirror(t *testing.T) string {
	t.Helper()
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "URIs:"); ok {
				for _, u := range strings.Fields(rest) {
					if !strings.HasSuffix(strings.TrimSuffix(u, "/"), "-security") {
						return u
					}
				}
			}
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && !strings.HasSuffix(f[1], "-security") {
				return f[1]
			}
		}
	}
	t.Fatal("no Debian archive in /etc/apt/sources.list{,.d}: debootstrap needs one")
	return ""
}
