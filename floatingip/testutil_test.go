package floatingip

import (
	"io"
	"log/slog"
	"os"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testLogger logs to stderr when HCAGENT_TEST_LOG is set (memberlist logs
// from timers after a test ended, so t.Output cannot be used).
func testLogger(_ any) *slog.Logger {
	if os.Getenv("HCAGENT_TEST_LOG") == "" {
		return discardLogger()
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
