package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Subjects compared by the harness.
const (
	SubjectAgent      = "hc-agent"
	SubjectKeepalived = "keepalived"
	SubjectRatio      = "ratio"
)

// Report is one run of the harness: what was measured, how, and the figures.
type Report struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Trials   int       `json:"trials"`
	Quick    bool      `json:"quick"`
	Host     Host      `json:"host"`
	Sections []Section `json:"sections"`
}

// Host describes the machine the run happened on, so that figures from
// different machines are not compared blindly.
type Host struct {
	Kernel    string `json:"kernel"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
}

// Section is one numbered item of the benchmark (failover, hand-over, boot,
// hotplug, API budget, footprint). A section that could not run carries the
// reason in Unavailable and no rows: the harness never invents numbers.
type Section struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Method      string   `json:"method"`
	Unavailable string   `json:"unavailable,omitempty"`
	Rows        []Row    `json:"rows,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// Row is one figure: either a summary over trials (Stats) or a single value
// with a unit (Value, Unit).
type Row struct {
	Subject string   `json:"subject"`
	Case    string   `json:"case"`
	Stats   *Summary `json:"stats,omitempty"`
	Value   *float64 `json:"value,omitempty"`
	Unit    string   `json:"unit,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// DurationRow returns a row that reports a summary over trials.
func DurationRow(subject, kase string, s Summary) Row {
	return Row{Subject: subject, Case: kase, Stats: &s}
}

// ValueRow returns a row that reports one value with its unit.
func ValueRow(subject, kase string, v float64, unit string) Row {
	return Row{Subject: subject, Case: kase, Value: &v, Unit: unit}
}

// Unavailable returns a section that could not be measured, with the reason.
func Unavailable(id, title, method, reason string) Section {
	return Section{ID: id, Title: title, Method: method, Unavailable: reason}
}

// WriteJSON writes the report as indented JSON to path, creating its
// directory. It writes a temporary file and renames it, so a reader never
// sees half a report.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal report: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create report directory for %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename report %s: %w", tmp, err)
	}
	return nil
}

// WriteTable prints the report for people: one block per section with its
// method, its rows aligned in columns, and its notes.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "hc-agent benchmark, %s, %d trials%s, kernel %s, %d CPUs, %s\n",
		r.Started.UTC().Format(time.RFC3339), r.Trials, quickNote(r.Quick), r.Host.Kernel, r.Host.CPUs, r.Host.GoVersion)
	for i, s := range r.Sections {
		fmt.Fprintf(&b, "\n%d. %s\n", i+1, s.Title)
		if s.Method != "" {
			fmt.Fprintf(&b, "   method: %s\n", s.Method)
		}
		if s.Unavailable != "" {
			fmt.Fprintf(&b, "   not available: %s\n", s.Unavailable)
		}
		if len(s.Rows) > 0 {
			tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "   SUBJECT\tCASE\tN\tFAILED\tP50\tP95\tMAX\tVALUE\t")
			for _, row := range s.Rows {
				fmt.Fprintf(tw, "   %s\t%s\t%s\t\n", row.Subject, row.Case, formatFigures(row))
			}
			if err := tw.Flush(); err != nil {
				return fmt.Errorf("format section %s: %w", s.ID, err)
			}
		}
		for _, row := range s.Rows {
			if row.Note != "" {
				fmt.Fprintf(&b, "   note (%s, %s): %s\n", row.Subject, row.Case, row.Note)
			}
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "   note: %s\n", n)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func quickNote(quick bool) string {
	if quick {
		return " (quick run: shortened, not for comparison)"
	}
	return ""
}

// formatFigures renders the N..VALUE columns of a row, tab-separated.
func formatFigures(row Row) string {
	cols := []string{"", "", "", "", "", ""}
	if s := row.Stats; s != nil {
		cols[0] = strconv.Itoa(s.N)
		cols[1] = strconv.Itoa(s.Failed)
		if s.N > 0 {
			cols[2], cols[3], cols[4] = FormatDuration(s.P50), FormatDuration(s.P95), FormatDuration(s.Max)
		} else {
			cols[2], cols[3], cols[4] = "-", "-", "-"
		}
	}
	if row.Value != nil {
		cols[5] = FormatValue(*row.Value, row.Unit)
	}
	return strings.Join(cols, "\t")
}

// FormatDuration prints d rounded to a millisecond, or to a microsecond
// below one millisecond, so that columns stay short.
func FormatDuration(d time.Duration) string {
	if d > 0 && d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// FormatValue prints v with its unit, with precision that suits the size.
func FormatValue(v float64, unit string) string {
	var s string
	switch {
	case v == float64(int64(v)) && (v >= 100 || v <= -100 || v == 0):
		s = strconv.FormatInt(int64(v), 10)
	case v >= 100 || v <= -100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1 || v <= -1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 4, 64)
	}
	if unit == "" {
		return s
	}
	if unit == "×" || unit == "%" {
		return s + unit
	}
	return s + " " + unit
}
