package agent

import (
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/hwid"
	"github.com/hc-agent/hc-agent/statedir"
)

// checkSerial discards a state directory recorded for another server
// before the metadata service answers, by the SMBIOS serial (the instance
// ID on Hetzner Cloud; see package hwid). Without a usable serial it does
// nothing: checkState judges by the metadata's instance-id as soon as it
// answers.
func (a *Agent) checkSerial() {
	path := a.cfg.SMBIOSSerialFile
	if path == "" || path == config.SMBIOSSerialOff {
		return
	}
	serial, ok, err := hwid.ReadSerial(path)
	if err != nil {
		a.log.Warn("smbios serial unreadable: clone detection waits for metadata", "path", path, "err", err)
		return
	}
	if !ok {
		return
	}
	a.mu.Lock()
	a.serial = serial
	a.mu.Unlock()
	dir := a.cfg.StateDir
	st, rec, err := statedir.LoadState(dir)
	if err != nil || !rec {
		return // checkState decides once metadata answers
	}
	if hwid.Judge(hwid.Facts{Recorded: st.InstanceID, Serial: serial}) != hwid.Clone {
		return
	}
	removed, err := statedir.ClearState(dir)
	a.log.Warn("state from another server discarded before metadata answered (smbios serial)",
		"dir", dir, "state_instance_id", st.InstanceID, "smbios_serial", serial, "removed", removed)
	if err != nil {
		a.log.Error("discard state from another server failed", "dir", dir, "err", err)
	}
}

// checkSerialAgainst reports, once, a serial that disagrees with the
// metadata's instance-id (the metadata wins).
func (a *Agent) checkSerialAgainst(instanceID int64) {
	a.mu.Lock()
	serial := a.serial
	a.mu.Unlock()
	hwid.NewReporter(a.log).Check(hwid.Facts{Serial: serial, Metadata: instanceID})
}
