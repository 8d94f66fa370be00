package floatingip

import (
	"io"
	"log/slog"
	"os"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testLogger(t interface{ Output() io.Writer }) *slog.Logger {
	if os.Getenv("HCAGENT_TEST_LOG") == "" {
		return discardLogger()
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
