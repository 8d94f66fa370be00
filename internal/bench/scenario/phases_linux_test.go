package scenario

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSummarizePhases(t *testing.T) {
	ms := time.Millisecond
	trials := []map[string]time.Duration{
		{"detection": 1000 * ms, "action_succeeded": 1010 * ms, "verified": 2 * ms},
		{"detection": 1200 * ms, "action_succeeded": 1020 * ms},
		{"detection": 1100 * ms, "action_succeeded": 1030 * ms, "verified": 4 * ms},
	}
	got := summarizePhases(trials)
	assert.Len(t, got, 3, "only phases that some trial reached")
	assert.Equal(t, 3, got["detection"].N)
	assert.Equal(t, 1100*ms, got["detection"].P50)
	assert.Equal(t, 1020*ms, got["action_succeeded"].P50)
	assert.Equal(t, 2, got["verified"].N, "a trial without the phase is not counted")
	_, ok := got["decision"]
	assert.False(t, ok)
}
