package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// errSkipped marks a step that did not run (for example one that needs the
// agent when none was given). It never fails the demo.
var errSkipped = errors.New("skipped")

// skip returns an error that marks the step as skipped, with the reason.
func skip(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errSkipped, fmt.Sprintf(format, args...))
}

// demo prints numbered steps with their timings.
type demo struct {
	out       io.Writer
	start     time.Time
	now       func() time.Time
	keepGoing bool
	results   []result
}

type result struct {
	n     int
	title string
	took  time.Duration
	err   error
	notes []string // key figures for the summary
}

func newDemo(out io.Writer, keepGoing bool) *demo {
	return &demo{out: out, start: time.Now(), now: time.Now, keepGoing: keepGoing}
}

// step runs fn as the next numbered step and prints its outcome. It returns
// fn's error unless the step was skipped or --keep-going is set.
func (d *demo) step(title string, fn func() error) error {
	r := result{n: len(d.results) + 1, title: title}
	fmt.Fprintf(d.out, "\n[%d] %s   (t=%s)\n", r.n, title, fmtDur(d.now().Sub(d.start)))
	d.results = append(d.results, r)
	t0 := d.now()
	err := fn()
	cur := &d.results[len(d.results)-1]
	cur.took, cur.err = d.now().Sub(t0), err
	switch {
	case err == nil:
		fmt.Fprintf(d.out, "    ok (%s)\n", fmtDur(cur.took))
	case errors.Is(err, errSkipped):
		fmt.Fprintf(d.out, "    %v\n", err)
		return nil
	default:
		fmt.Fprintf(d.out, "    FAILED after %s: %v\n", fmtDur(cur.took), err)
		if d.keepGoing {
			return nil
		}
	}
	return err
}

// say prints a detail line of the current step.
func (d *demo) say(format string, args ...any) {
	for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		fmt.Fprintf(d.out, "    %s\n", line)
	}
}

// note prints a detail line and keeps it for the summary.
func (d *demo) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	d.say("%s", s)
	if len(d.results) > 0 {
		cur := &d.results[len(d.results)-1]
		cur.notes = append(cur.notes, s)
	}
}

// summary prints one line per step and the key figures.
func (d *demo) summary() {
	fmt.Fprintf(d.out, "\nSummary (total %s)\n", fmtDur(d.now().Sub(d.start)))
	for _, r := range d.results {
		status := "ok"
		switch {
		case errors.Is(r.err, errSkipped):
			status = "skipped"
		case r.err != nil:
			status = "FAILED"
		}
		fmt.Fprintf(d.out, "  [%d] %-7s %8s  %s\n", r.n, status, fmtDur(r.took), r.title)
		for _, n := range r.notes {
			fmt.Fprintf(d.out, "                        %s\n", n)
		}
	}
}

// failed reports whether any step failed (skipped steps do not count).
func (d *demo) failed() bool {
	for _, r := range d.results {
		if r.err != nil && !errors.Is(r.err, errSkipped) {
			return true
		}
	}
	return false
}

// fmtDur prints durations the way people read them: 850ms, 1.42s.
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
