package floatingip

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var notifyLineTests = []struct {
	line    string
	want    NotifyEvent
	wantErr bool
}{
	{line: `INSTANCE "VI_1" MASTER 100`, want: NotifyEvent{"INSTANCE", "VI_1", "MASTER", 100}},
	{line: `INSTANCE "VI_1" BACKUP 50` + "\n", want: NotifyEvent{"INSTANCE", "VI_1", "BACKUP", 50}},
	{line: `GROUP "G1" BACKUP 0`, want: NotifyEvent{"GROUP", "G1", "BACKUP", 0}},
	{line: `INSTANCE "web ha" FAULT 0`, want: NotifyEvent{"INSTANCE", "web ha", "FAULT", 0}},
	{line: `INSTANCE "VI_1" STOP 0`, want: NotifyEvent{"INSTANCE", "VI_1", "STOP", 0}},
	{line: `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100`, want: NotifyEvent{"INSTANCE", "VI_1", "MASTER_RX_LOWER_PRI", 100}},
	{line: `INSTANCE "VI_1" DELETED 0`, want: NotifyEvent{"INSTANCE", "VI_1", "DELETED", 0}},
	{line: `INSTANCE "VI_1" HALF 100`, wantErr: true},
	{line: `INSTANCE VI_1 MASTER 100`, wantErr: true},
	{line: `INSTANCE "VI_1 MASTER 100`, wantErr: true},
	{line: `INSTANCE "" MASTER 100`, wantErr: true},
	{line: `INSTANCE "VI_1" MASTER`, wantErr: true},
	{line: `INSTANCE "VI_1" MASTER 100 extra`, wantErr: true},
	{line: `INSTANCE "VI_1" MASTER 256`, wantErr: true},
	{line: `INSTANCE "VI_1" MASTER -1`, wantErr: true},
	{line: `INSTANCE "VI_1" MASTER 0100`, wantErr: true},
	{line: `INSTANCE "VI_1"MASTER 100`, wantErr: true},
	{line: `SERVER "VI_1" MASTER 100`, wantErr: true},
	{line: ``, wantErr: true},
	{line: `INSTANCE`, wantErr: true},
}

func TestParseNotifyLine(t *testing.T) {
	for _, tt := range notifyLineTests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := ParseNotifyLine(tt.line)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := ParseNotifyLine(got.String())
			require.NoError(t, err)
			assert.Equal(t, got, again)
		})
	}
}

func FuzzParseNotifyLine(f *testing.F) {
	for _, tt := range notifyLineTests {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseNotifyLine(line)
		if err != nil {
			return
		}
		again, err := ParseNotifyLine(e.String())
		if err != nil {
			t.Fatalf("reparse %q (from %q): %v", e.String(), line, err)
		}
		if again != e {
			t.Fatalf("reparse %q: got %+v, want %+v", e.String(), again, e)
		}
	})
}

func TestReadNotifyFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.fifo")
	events := make(chan NotifyEvent, 10)
	ctx := t.Context()
	errc := make(chan error, 1)
	go func() { errc <- ReadNotifyFIFO(ctx, path, "VI_1", discardLogger(), events) }()

	// Wait for the reader to create the FIFO: open for writing blocks until
	// the reader has it open, so poll only for existence.
	var w *os.File
	require.Eventually(t, func() bool {
		var err error
		w, err = os.OpenFile(path, os.O_WRONLY, 0)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	lines := "INSTANCE \"VI_1\" BACKUP 100\n" +
		"INSTANCE \"OTHER\" MASTER 100\n" +
		"garbage\n" +
		"INSTANCE \"VI_1\" MASTER 100\n" +
		"INSTANCE \"VI_1\" FAULT 0\n"
	_, err := w.WriteString(lines)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	want := []NotifyEvent{
		{"INSTANCE", "VI_1", "BACKUP", 100},
		{"INSTANCE", "VI_1", "MASTER", 100},
		{"INSTANCE", "VI_1", "FAULT", 0},
	}
	for i, w := range want {
		select {
		case got := <-events:
			assert.Equal(t, w, got, "event %d", i)
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d: timeout", i)
		}
	}
}
