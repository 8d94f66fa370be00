package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// agentBin is the hc-agent binary built by TestMain ("" when not root or
// the build failed; buildErr says why).
var (
	agentBin string
	buildErr error
)

func TestMain(m *testing.M) {
	simcloud.RunHelper() // runs the name service when re-executed as it
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "hc-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: create build directory:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		agentBin = filepath.Join(dir, "hc-agent")
		cmd := exec.Command("go", "build", "-o", agentBin, "github.com/hc-agent/hc-agent/cmd/hc-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build hc-agent: %w: %s", err, out)
			agentBin = ""
		}
	}
	return m.Run()
}

// requireAgent skips the test when not root and fails it when hc-agent
// could not be built.
func requireAgent(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("e2e tests need root: the simulated cloud is made of network namespaces")
	}
	if testing.Short() {
		t.Skip("e2e tests are long: skipped with -short")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}
