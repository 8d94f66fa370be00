package netconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/hc-agent/hc-agent/statedir"
)

// OwnedFileName is the name of the ownership record inside the agent's
// state directory, shared by the daemon and `hc-agent apply`.
const OwnedFileName = "netconf-owned.json"

// ownedVersion is the format version of the Owned record on disk.
const ownedVersion = 1

// Owned records the addresses hc-agent added. The kernel keeps no origin on
// an address (routes have rtm_protocol, addresses have nothing comparable),
// so this record is the only way to know later that an address is ours and
// may be removed. An address that was already there when hc-agent came (put
// by a DHCP client or the image) is never recorded, so never removed.
//
// Addresses are keyed by the NIC's MAC, not its name or index: those change
// across reboots and hotplug, the MAC does not. The record is JSON so that the
// daemon can keep it under its state directory (LoadOwned, SaveOwned).
type Owned struct {
	Version   int            `json:"version"`
	Addresses []OwnedAddress `json:"addresses"`
}

// OwnedAddress is one address hc-agent added.
type OwnedAddress struct {
	MAC    string       `json:"mac"`    // lower-case 86:00:00:xx:xx:xx
	Prefix netip.Prefix `json:"prefix"` // e.g. 10.0.0.3/32
}

// Has reports whether hc-agent owns prefix on the NIC with mac.
func (o *Owned) Has(mac net.HardwareAddr, p netip.Prefix) bool {
	return slices.Contains(o.Addresses, OwnedAddress{MAC: mac.String(), Prefix: p})
}

// add records prefix on mac as ours.
func (o *Owned) add(mac net.HardwareAddr, p netip.Prefix) {
	if o.Has(mac, p) {
		return
	}
	o.Addresses = append(o.Addresses, OwnedAddress{MAC: mac.String(), Prefix: p})
	o.normalize()
}

// drop forgets prefix on mac.
func (o *Owned) drop(mac string, p netip.Prefix) {
	o.Addresses = slices.DeleteFunc(o.Addresses, func(a OwnedAddress) bool {
		return a.MAC == mac && a.Prefix == p
	})
}

// Clone returns a deep copy.
func (o Owned) Clone() Owned {
	return Owned{Version: o.Version, Addresses: slices.Clone(o.Addresses)}
}

func (o *Owned) normalize() {
	o.Version = ownedVersion
	slices.SortFunc(o.Addresses, func(a, b OwnedAddress) int {
		if c := strings.Compare(a.MAC, b.MAC); c != 0 {
			return c
		}
		return a.Prefix.Addr().Compare(b.Prefix.Addr())*2 + cmpInt(a.Prefix.Bits(), b.Prefix.Bits())
	})
	o.Addresses = slices.Compact(o.Addresses)
	if o.Addresses == nil {
		o.Addresses = []OwnedAddress{}
	}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ParseOwned decodes an Owned record and validates every entry.
func ParseOwned(data []byte) (Owned, error) {
	var o Owned
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return Owned{}, fmt.Errorf("decode ownership record: %w", err)
	}
	if o.Version != ownedVersion {
		return Owned{}, fmt.Errorf("decode ownership record: unsupported version %d", o.Version)
	}
	for i, a := range o.Addresses {
		mac, err := net.ParseMAC(a.MAC)
		if err != nil || len(mac) != 6 {
			return Owned{}, fmt.Errorf("decode ownership record: address %d: invalid mac %q", i, a.MAC)
		}
		if !a.Prefix.IsValid() || !a.Prefix.Addr().Is4() {
			return Owned{}, fmt.Errorf("decode ownership record: address %d: invalid ipv4 prefix %q", i, a.Prefix)
		}
		o.Addresses[i].MAC = mac.String()
	}
	o.normalize()
	return o, nil
}

// Marshal encodes the record as indented JSON.
func (o Owned) Marshal() ([]byte, error) {
	o = o.Clone()
	o.normalize()
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode ownership record: %w", err)
	}
	return append(b, '\n'), nil
}

// LoadOwned reads the record at path. A missing file is an empty record: a
// fresh host owns nothing.
func LoadOwned(path string) (Owned, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		o := Owned{}
		o.normalize()
		return o, nil
	}
	if err != nil {
		return Owned{}, fmt.Errorf("read ownership record %s: %w", path, err)
	}
	o, err := ParseOwned(data)
	if err != nil {
		return Owned{}, fmt.Errorf("load %s: %w", path, err)
	}
	return o, nil
}

// SaveOwned writes the record to path with statedir.WriteFile (atomic,
// mode 0600, creating the directory if needed).
func SaveOwned(path string, o Owned) error {
	data, err := o.Marshal()
	if err != nil {
		return err
	}
	if err := statedir.WriteFile(path, data); err != nil {
		return fmt.Errorf("save ownership record: %w", err)
	}
	return nil
}
