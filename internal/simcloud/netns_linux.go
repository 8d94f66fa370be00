package simcloud

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 and vishvananda/netns keep named namespaces.
const netnsDir = "/run/netns"

// namePrefix starts every namespace this package creates. The full name is
// hcs-<pid>-<run>-<role>: the PID lets a later run remove namespaces left
// behind by a process that was killed before it could clean up.
const namePrefix = "hcs-"

// nsName is the parsed form of one of our namespace names.
type nsName struct {
	PID  int
	Run  int
	Role string
}

// String formats the name as it appears under /run/netns.
func (n nsName) String() string {
	return fmt.Sprintf("%s%d-%d-%s", namePrefix, n.PID, n.Run, n.Role)
}

// parseNSName parses a namespace name made by nsName.String. ok is false for
// names this package did not make.
func parseNSName(s string) (n nsName, ok bool) {
	rest, found := strings.CutPrefix(s, namePrefix)
	if !found {
		return nsName{}, false
	}
	parts := strings.SplitN(rest, "-", 3)
	if len(parts) != 3 || parts[2] == "" {
		return nsName{}, false
	}
	pid, err := strconv.Atoi(parts[0])
	if err != nil || pid <= 0 || strconv.Itoa(pid) != parts[0] {
		return nsName{}, false
	}
	run, err := strconv.Atoi(parts[1])
	if err != nil || run < 0 || strconv.Itoa(run) != parts[1] {
		return nsName{}, false
	}
	return nsName{PID: pid, Run: run, Role: parts[2]}, true
}

// namespace is one named network namespace with an open handle and a netlink
// handle bound to it.
type namespace struct {
	name  string
	inode uint64

	// mu guards ns and nl against close while do enters the namespace:
	// HTTP transports may still dial in the background after Close.
	mu     sync.RWMutex
	closed bool
	ns     netns.NsHandle
	nl     *netlink.Handle
}

// netnsMount makes netnsDir a shared mount point once per process.
var netnsMount = sync.OnceValue(makeNetnsMount)

// makeNetnsMount makes netnsDir a mount point with shared propagation, as
// `ip netns add` does the first time it runs. vishvananda/netns mounts the
// namespace files without doing so; when iproute2 later turns the
// directory into a mount point (a test running `ip netns add` in
// parallel), it binds it over the namespaces mounted so far, which hides
// them: they can then neither be unmounted nor removed through the path,
// and stay until reboot. Doing it first, here, means the later ip finds a
// mount point and leaves it.
func makeNetnsMount() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	for bound := false; ; bound = true {
		err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || bound {
			return fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
		}
		// EINVAL: not a mount point yet.
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s onto itself: %w", netnsDir, err)
		}
	}
}

// newNamespace creates the named namespace without moving the calling
// goroutine's thread into it for longer than the creation takes.
func newNamespace(name string) (*namespace, error) {
	var (
		h   netns.NsHandle
		err error
	)
	if err := netnsMount(); err != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, err)
	}
	doErr := onLockedThread(func() error {
		h, err = netns.NewNamed(name)
		return err
	})
	if doErr != nil {
		return nil, fmt.Errorf("create namespace %s: %w", name, doErr)
	}
	nlh, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		_ = netns.DeleteNamed(name)
		return nil, fmt.Errorf("open netlink in namespace %s: %w", name, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		nlh.Close()
		h.Close()
		_ = netns.DeleteNamed(name)
		return nil, fmt.Errorf("stat namespace %s: %w", name, err)
	}
	n := &namespace{name: name, ns: h, nl: nlh, inode: st.Ino}
	if err := n.setLinkUp("lo"); err != nil {
		n.close()
		return nil, err
	}
	return n, nil
}

// onLockedThread runs fn on a locked OS thread and restores the thread's
// original network namespace afterwards. fn may change the namespace (as
// netns.NewNamed does). When the namespace cannot be restored the thread stays
// locked, so the Go runtime throws it away when the goroutine ends instead of
// reusing a thread in the wrong namespace.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	// The goroutine exits when fn returns; its thread exits with it when
	// the namespace could not be restored.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current namespace: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// do runs fn with the calling thread inside the namespace. Sockets created
// by fn stay in the namespace after do returns.
func (n *namespace) do(fn func() error) error {
	return onLockedThread(func() error {
		// Only entering needs the handle; once inside, the thread keeps the
		// namespace alive even if close runs meanwhile.
		n.mu.RLock()
		if n.closed {
			n.mu.RUnlock()
			return fmt.Errorf("enter namespace %s: closed", n.name)
		}
		err := netns.Set(n.ns)
		n.mu.RUnlock()
		if err != nil {
			return fmt.Errorf("enter namespace %s: %w", n.name, err)
		}
		return fn()
	})
}

// sysctl writes a value below /proc/sys/net inside the namespace.
func (n *namespace) sysctl(key, value string) error {
	return n.do(func() error {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("set sysctl %s in namespace %s: %w", key, n.name, err)
		}
		return nil
	})
}

// setLinkUp sets the named link up.
func (n *namespace) setLinkUp(name string) error {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s in namespace %s: %w", name, n.name, err)
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set link %s up in namespace %s: %w", name, n.name, err)
	}
	return nil
}

// setLinkDown sets the named link down.
func (n *namespace) setLinkDown(name string) error {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s in namespace %s: %w", name, n.name, err)
	}
	if err := n.nl.LinkSetDown(l); err != nil {
		return fmt.Errorf("set link %s down in namespace %s: %w", name, n.name, err)
	}
	return nil
}

// pids lists the processes whose network namespace is this one.
func (n *namespace) pids() []int {
	return pidsInNetNS(n.inode)
}

// killAll SIGKILLs every process in the namespace, also those that join it
// meanwhile, and waits until they have exited. A process leaves the
// namespace before the last of its files are closed, so leaving it is not
// enough: each must be gone or a zombie.
func (n *namespace) killAll(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	dying := map[int]bool{} // killed, not yet gone
	for {
		for _, pid := range n.pids() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			dying[pid] = true
		}
		maps.DeleteFunc(dying, func(pid int, _ bool) bool { return !processAlive(pid) })
		if len(dying) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var desc []string
			for pid := range dying {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				desc = append(desc, strings.TrimSpace(string(b)))
			}
			return fmt.Errorf("kill processes in namespace %s: still running after %s: %q", n.name, timeout, desc)
		}
		<-tick.C
	}
}

// close releases the handles and deletes the namespace. Deleting the last
// reference to a namespace deletes its links, and a veth dies with either
// end. Already-deleted counts as success.
func (n *namespace) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.ns.IsOpen() {
		n.ns.Close()
	}
	if err := netns.DeleteNamed(n.name); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete namespace %s: %w", n.name, err)
	}
	return nil
}

// pidsInNetNS scans /proc for processes in the network namespace with the
// given inode. Processes that exit during the scan are skipped.
func pidsInNetNS(inode uint64) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+e.Name()+"/ns/net", &st); err != nil {
			continue
		}
		if st.Ino == inode {
			out = append(out, pid)
		}
	}
	return out
}

// removeStale deletes namespaces left behind by runs whose process is gone,
// killing any process still inside them. It returns the names it removed.
func removeStale() ([]string, error) {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces in %s: %w", netnsDir, err)
	}
	var (
		removed []string
		errs    []error
	)
	for _, e := range ents {
		n, ok := parseNSName(e.Name())
		if !ok || processAlive(n.PID) {
			continue
		}
		p := filepath.Join(netnsDir, e.Name())
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			for _, pid := range pidsInNetNS(st.Ino) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			// An unmounted leftover file: remove it all the same.
			if rmErr := os.Remove(p); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete stale namespace %s: %w", e.Name(), err))
				continue
			}
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// processAlive reports whether a process with the PID exists and has not
// finished exiting (a zombie has closed all its files).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	switch b[i+2] {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// operUpTimeout bounds the wait for links to become operational.
const operUpTimeout = 3 * time.Second

// waitOperUp waits until the named links are operationally up. The kernel
// activates a link's queueing discipline from its link-watch work, which
// may run up to a second after the link was set up; until then the link
// drops every packet it is asked to send. Waiting here keeps that second
// out of every measurement made on a fresh topology.
func (n *namespace) waitOperUp(names ...string) error {
	deadline := time.Now().Add(operUpTimeout)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for _, name := range names {
		for {
			l, err := n.nl.LinkByName(name)
			if err != nil {
				return fmt.Errorf("find link %s in namespace %s: %w", name, n.name, err)
			}
			if l.Attrs().OperState == netlink.OperUp {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("wait for link %s in namespace %s to come up: still %s", name, n.name, l.Attrs().OperState)
			}
			<-tick.C
		}
	}
	return nil
}
