package floatingip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// NotifyEvent is one line of keepalived's notify_fifo, for example
// `INSTANCE "VI_1" MASTER 100` or `GROUP "G1" BACKUP 0`.
type NotifyEvent struct {
	// Kind is INSTANCE or GROUP.
	Kind string
	// Name is the VRRP instance or sync group name.
	Name string
	// State is MASTER, BACKUP, FAULT, STOP, or one of the MASTER_RX_LOWER_PRI
	// style variants keepalived emits.
	State string
	// Priority is the priority keepalived reports.
	Priority int
}

// Known notify_fifo states. keepalived 2.x writes MASTER, BACKUP, FAULT and
// STOP; MASTER_RX_LOWER_PRI is written when a master receives an advert with
// a lower priority (it stays master), and DELETED when an instance is removed
// by a reload.
var notifyStates = map[string]bool{
	"MASTER": true, "BACKUP": true, "FAULT": true, "STOP": true,
	"MASTER_RX_LOWER_PRI": true, "DELETED": true,
}

// Master reports whether the event makes this server the holder.
func (e NotifyEvent) Master() bool {
	return e.State == "MASTER" || e.State == "MASTER_RX_LOWER_PRI"
}

// String formats e as keepalived writes it: the name between double quotes
// as is, without escaping. ParseNotifyLine(e.String()) returns e.
func (e NotifyEvent) String() string {
	return fmt.Sprintf("%s \"%s\" %s %d", e.Kind, e.Name, e.State, e.Priority)
}

// ParseNotifyLine parses one notify_fifo line. Unknown kinds and states are
// errors, never panics.
func ParseNotifyLine(line string) (NotifyEvent, error) {
	var e NotifyEvent
	line = strings.TrimRight(line, "\r\n")
	kind, rest, ok := strings.Cut(line, " ")
	if !ok {
		return e, fmt.Errorf("parse notify line %q: missing name", line)
	}
	switch kind {
	case "INSTANCE", "GROUP":
	default:
		return e, fmt.Errorf("parse notify line %q: unknown kind %q", line, kind)
	}
	e.Kind = kind
	if !strings.HasPrefix(rest, `"`) {
		return e, fmt.Errorf("parse notify line %q: name not quoted", line)
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return e, fmt.Errorf("parse notify line %q: unterminated name", line)
	}
	e.Name = rest[1 : 1+end]
	if e.Name == "" || !strconv.CanBackquote(e.Name) {
		return e, fmt.Errorf("parse notify line %q: invalid name", line)
	}
	fields := strings.Fields(rest[2+end:])
	if len(fields) != 2 || !strings.HasPrefix(rest[2+end:], " ") {
		return e, fmt.Errorf("parse notify line %q: want state and priority", line)
	}
	if !notifyStates[fields[0]] {
		return e, fmt.Errorf("parse notify line %q: unknown state %q", line, fields[0])
	}
	e.State = fields[0]
	prio, err := strconv.Atoi(fields[1])
	if err != nil || prio < 0 || prio > 255 || strconv.Itoa(prio) != fields[1] {
		return e, fmt.Errorf("parse notify line %q: invalid priority %q", line, fields[1])
	}
	e.Priority = prio
	return e, nil
}

// ReadNotifyFIFO opens (creating it if needed) the FIFO at path and sends
// every event for the instance or group named name to events, in order.
// Lines it cannot parse are logged and skipped. keepalived reopens the FIFO
// when it restarts, so ReadNotifyFIFO reopens it after EOF. It returns when
// ctx is done; the goroutine it starts to unblock the open exits with it.
func ReadNotifyFIFO(ctx context.Context, path, name string, log *slog.Logger, events chan<- NotifyEvent) error {
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create notify fifo %s: %w", path, err)
	}
	for {
		// O_RDWR keeps the open from blocking until a writer appears and
		// avoids EOF loops while keepalived restarts.
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open notify fifo %s: %w", path, err)
		}
		stop := context.AfterFunc(ctx, func() { f.Close() })
		err = readNotify(ctx, f, name, log, events)
		stop()
		f.Close()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("read notify fifo %s: %w", path, err)
		}
	}
}

func readNotify(ctx context.Context, r io.Reader, name string, log *slog.Logger, events chan<- NotifyEvent) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		e, err := ParseNotifyLine(sc.Text())
		if err != nil {
			log.Warn("skip keepalived notify line", "err", err)
			continue
		}
		if name != "" && e.Name != name {
			continue
		}
		select {
		case events <- e:
		case <-ctx.Done():
			return nil
		}
	}
	return sc.Err()
}
