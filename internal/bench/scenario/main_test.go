package scenario

import (
	"os"
	"testing"

	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// TestMain lets the simulated cloud re-execute the test binary as its name
// service helper.
func TestMain(m *testing.M) {
	simcloud.RunHelper()
	os.Exit(m.Run())
}
