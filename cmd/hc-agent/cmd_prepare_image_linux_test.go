package main

import (
	"testing"

	"github.com/hc-agent/hc-agent/statedir"

	"github.com/stretchr/testify/assert"

	"github.com/hc-agent/hc-agent/agent"
	"github.com/hc-agent/hc-agent/netconf"
)

// TestPrepareImageKnowsTheStateFiles ties the files TestPrepareImage
// removes to the names the daemon writes, so that a renamed record cannot
// slip past it.
func TestPrepareImageKnowsTheStateFiles(t *testing.T) {
	for _, name := range []string{statedir.StateFile, agent.OwnedFile, netconf.OwnedFileName, statedir.FloatingIPOwnedFile} {
		assert.Contains(t, instanceState, name)
	}
}
