package keepalived

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binary is the keepalived executable the baseline runs.
const Binary = "/usr/sbin/keepalived"

// Event is a state transition with the time the harness read it from
// keepalived's log.
type Event struct {
	Transition
	At time.Time
}

// Process is one keepalived running in the foreground, usually inside a
// network namespace. It is ended only by Kill or Stop, by PID.
type Process struct {
	cmd      *exec.Cmd
	vrrpPID  string
	log      *slog.Logger
	events   chan Event
	done     chan struct{} // closed when the process has been waited for
	waitErr  error
	endOnce  sync.Once
	mu       sync.Mutex
	tail     []string // last log lines, for error messages
	scanDone chan struct{}
}

// Start writes conf to dir/keepalived.conf, removes stale pid files (a
// leftover pid file makes keepalived refuse to start), and runs
// `keepalived -n -l -D -P` in network namespace netns ("" runs it in the
// caller's namespace). Its log is appended to dir/keepalived.log with the
// time each line was read; Transitions delivers the state changes it logs.
func Start(netns, dir, conf string, log *slog.Logger) (*Process, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	confPath := filepath.Join(dir, "keepalived.conf")
	pid := filepath.Join(dir, "keepalived.pid")
	vrrpPID := filepath.Join(dir, "vrrp.pid")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write keepalived config %s: %w", confPath, err)
	}
	for _, f := range []string{pid, vrrpPID} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale pid file %s: %w", f, err)
		}
	}
	args := []string{"-n", "-l", "-D", "-P", "-f", confPath, "-p", pid, "-r", vrrpPID}
	var cmd *exec.Cmd
	if netns != "" {
		// ip netns exec execs keepalived in place, so cmd's PID is keepalived's.
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, Binary}, args...)...)
	} else {
		cmd = exec.Command(Binary, args...)
	}
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("pipe keepalived output in %s: %w", netns, err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start keepalived in %s: %w", netns, err)
	}
	p := &Process{
		cmd:      cmd,
		vrrpPID:  vrrpPID,
		log:      log.With("netns", netns, "pid", cmd.Process.Pid),
		events:   make(chan Event, 64),
		done:     make(chan struct{}),
		scanDone: make(chan struct{}),
	}
	logf, err := os.OpenFile(filepath.Join(dir, "keepalived.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("open keepalived log in %s: %w", dir, err)
	}
	go p.scan(out, logf)
	// This goroutine exits when keepalived has exited and its output is read.
	go func() {
		<-p.scanDone
		p.waitErr = cmd.Wait()
		close(p.done)
		close(p.events)
	}()
	p.log.Debug("keepalived started")
	return p, nil
}

// PID returns the PID of the keepalived parent process.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Transitions delivers every state change in order; it is closed when
// keepalived has exited. Events are dropped if nobody reads and 64 are
// queued.
func (p *Process) Transitions() <-chan Event { return p.events }

// Done is closed once keepalived has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// WaitState waits for a transition to state (MASTER, BACKUP, FAULT) and
// returns when it was logged. Earlier transitions to other states are
// consumed.
func (p *Process) WaitState(ctx context.Context, state string) (time.Time, error) {
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				return time.Time{}, fmt.Errorf("wait for keepalived %d to enter %s: exited: %s", p.PID(), state, p.Tail())
			}
			if ev.State == state {
				return ev.At, nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for keepalived %d to enter %s: %w", p.PID(), state, ctx.Err())
		}
	}
}

// Tail returns keepalived's last log lines, for error messages.
func (p *Process) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, " | ")
}

// scan reads keepalived's log until the pipe closes (when keepalived and
// every child sharing its output have exited).
func (p *Process) scan(r io.Reader, logf *os.File) {
	defer close(p.scanDone)
	defer logf.Close()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		now := time.Now()
		line := sc.Text()
		fmt.Fprintf(logf, "%s %s\n", now.Format("15:04:05.000000"), line)
		p.mu.Lock()
		p.tail = append(p.tail, line)
		if len(p.tail) > 8 {
			p.tail = p.tail[1:]
		}
		p.mu.Unlock()
		if t, ok := ParseLogLine(line); ok {
			p.log.Debug("keepalived state", "instance", t.Instance, "state", t.State)
			select {
			case p.events <- Event{Transition: t, At: now}:
			default:
			}
		}
	}
}

// Kill ends keepalived as a crash would: no goodbye advertisement. The
// parent is stopped first so that it cannot respawn its VRRP child, then the
// child and the parent are killed; a VRRP child that outlived its parent
// would get SIGTERM from the kernel and leave gracefully, which is not a
// crash. Kill waits for the parent and is safe to call more than once.
func (p *Process) Kill() error {
	p.endOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		if child, err := readPID(p.vrrpPID); err == nil {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
		_ = p.cmd.Process.Kill()
	})
	<-p.done
	return p.exitErr()
}

// Stop ends keepalived gracefully with SIGTERM (it sends a priority 0
// advertisement, so a peer takes over at once) and waits up to timeout
// before killing it.
func (p *Process) Stop(timeout time.Duration) error {
	p.endOnce.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			if child, err := readPID(p.vrrpPID); err == nil {
				_ = syscall.Kill(child, syscall.SIGKILL)
			}
			_ = p.cmd.Process.Kill()
		}
	})
	<-p.done
	return p.exitErr()
}

// exitErr reports how keepalived ended; being killed or terminated by the
// harness is not an error.
func (p *Process) exitErr() error {
	var ee *exec.ExitError
	if p.waitErr == nil || errors.As(p.waitErr, &ee) {
		return nil
	}
	return fmt.Errorf("wait for keepalived %d: %w", p.PID(), p.waitErr)
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file %s: %w", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("parse pid file %s: %q", path, b)
	}
	return pid, nil
}
