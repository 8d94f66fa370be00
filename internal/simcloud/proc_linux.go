package simcloud

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxOutput bounds the output a Proc keeps (the last bytes win).
const maxOutput = 1 << 20

// Proc is a process running inside a server namespace.
type Proc struct {
	// Name labels the process in logs and Leftovers.
	Name string

	server *Server // where it runs
	cmd    *exec.Cmd
	out    *tailBuffer
	done   chan struct{}
	err    error // valid after done is closed
}

// PID returns the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Signal sends sig to the process. Signalling an exited process is not an
// error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s to process %s (%d): %w", sig, p.Name, p.PID(), err)
	}
	return nil
}

// Stop sends sig (typically SIGTERM) and waits for the process to exit; if
// it has not exited when ctx ends, it is killed. It returns the exit error
// as Wait does.
func (p *Proc) Stop(ctx context.Context, sig syscall.Signal) error {
	if err := p.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		_ = p.Kill()
		return fmt.Errorf("stop process %s: %w", p.Name, ctx.Err())
	}
}

// Kill sends SIGKILL and waits for the process to be reaped. Killing an
// exited process is not an error.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Wait waits for the process to exit and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Output returns what the process wrote to stdout and stderr (the last
// MiB).
func (p *Proc) Output() string { return p.out.String() }

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start runs argv inside the server's namespace via `ip netns exec` (which
// also mounts a /sys of that namespace, as the process would see on a real
// server). The environment is the caller's plus env. Output goes to the
// Proc's buffer and, when out is non-nil, to out as well. The process is
// killed when ctx ends, when the Cloud is closed, and (by the kernel) when
// this process dies.
func (s *Server) Start(ctx context.Context, name string, argv []string, env []string) (*Proc, error) {
	return s.StartWithOutput(ctx, name, argv, env, nil)
}

// StartWithOutput is Start with a copy of the output going to out.
func (s *Server) StartWithOutput(ctx context.Context, name string, argv []string, env []string, out io.Writer) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start %s on %s: empty command", name, s.name)
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.closed {
		return nil, fmt.Errorf("start %s on %s: cloud is closed", name, s.name)
	}
	if s.crashed {
		return nil, fmt.Errorf("start %s on %s: server is crashed", name, s.name)
	}
	args := append([]string{"netns", "exec", s.ns.name}, argv...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = append(os.Environ(), env...)
	buf := &tailBuffer{max: maxOutput}
	var w io.Writer = buf
	if out != nil {
		w = io.MultiWriter(buf, out)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// The kernel kills the process when the thread that started it exits;
	// Go threads live as long as the process unless locked, so in practice
	// this fires when we die without running Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, s.name, err)
	}
	p := &Proc{Name: s.name + "/" + name, server: s, cmd: cmd, out: buf, done: make(chan struct{})}
	s.c.procs = append(s.c.procs, p)
	// The goroutine exits when the process has been reaped.
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Exec runs argv inside the server's namespace to completion and returns
// its combined output (for `ip addr`, `ip route` and the like).
func (s *Server) Exec(ctx context.Context, argv ...string) (string, error) {
	return execIn(ctx, s.ns.name, argv)
}

// ExecCloud runs argv inside the cloud namespace to completion and returns
// its combined output.
func (c *Cloud) ExecCloud(ctx context.Context, argv ...string) (string, error) {
	return execIn(ctx, c.cloud.name, argv)
}

func execIn(ctx context.Context, ns string, argv []string) (string, error) {
	args := append([]string{"netns", "exec", ns}, argv...)
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %s in namespace %s: %w: %s", strings.Join(argv, " "), ns, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Do runs fn with the calling thread inside the server's namespace. Sockets
// fn creates stay in the server's namespace.
func (s *Server) Do(fn func() error) error { return s.ns.do(fn) }

// HTTPClient returns an HTTP client whose connections start inside the
// server's namespace (e.g. to read the metadata service as the server).
func (s *Server) HTTPClient() *http.Client { return s.ns.httpClient() }

// Get fetches url from inside the server's namespace and returns the
// trimmed body. A status other than 200 is an error.
func (s *Server) Get(ctx context.Context, url string) (string, error) {
	return get(ctx, s.ns.httpClient(), url)
}

// Pause freezes every process in the server's namespace (SIGSTOP) for d,
// then resumes them (SIGCONT), like a live migration. The kernel side of the
// namespace keeps running, so packets queue in socket buffers and nothing
// answers. It blocks for d; when ctx ends first the processes are resumed
// at once and ctx's error is returned.
func (c *Cloud) Pause(ctx context.Context, server string, d time.Duration) error {
	s := c.Server(server)
	if s == nil {
		return fmt.Errorf("pause server %s: no such server", server)
	}
	pids := s.ns.pids()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGSTOP)
	}
	c.log.Info("server paused", "server", server, "processes", len(pids), "duration", d)
	t := time.NewTimer(d)
	defer t.Stop()
	var err error
	select {
	case <-t.C:
	case <-ctx.Done():
		err = fmt.Errorf("pause server %s: %w", server, ctx.Err())
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
	}
	c.log.Info("server resumed", "server", server)
	return err
}

// get fetches url and returns the trimmed body (at most 64 KiB).
func get(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	return strings.TrimSpace(string(b)), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
