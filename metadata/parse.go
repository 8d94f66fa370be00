package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The metadata keys the reference documents. Each is a sub-path of the
// endpoint; the summary document (key "") carries all of them except
// private-networks.
const (
	KeyHostname         = "hostname"
	KeyInstanceID       = "instance-id"
	KeyPublicIPv4       = "public-ipv4"
	KeyPrivateNetworks  = "private-networks"
	KeyAvailabilityZone = "availability-zone"
	KeyRegion           = "region"
)

// Keys lists the documented sub-path keys in the reference's order.
func Keys() []string {
	return []string{KeyHostname, KeyInstanceID, KeyPublicIPv4, KeyPrivateNetworks, KeyAvailabilityZone, KeyRegion}
}

// summaryKeys are the keys ParseSummary maps to Summary fields; every other
// key lands in Summary.Extra.
var summaryKeys = map[string]bool{
	KeyAvailabilityZone: true,
	KeyHostname:         true,
	KeyInstanceID:       true,
	KeyPublicIPv4:       true,
	KeyRegion:           true,
}

// ParseSummary parses the summary document. Whitespace around it is ignored
// and an empty body yields the zero Summary (the service answers 204 when it
// has nothing). Documented keys that are absent or null stay zero; keys the
// reference does not document are kept in Extra. A documented key with a
// value of the wrong type, an instance-id that is not a positive integer or a
// public-ipv4 that is not an IPv4 address is a KindMalformed error naming the
// field.
func ParseSummary(b []byte) (Summary, error) {
	s, err := parseSummary(b)
	if err != nil {
		return Summary{}, err
	}
	return s, nil
}

func parseSummary(b []byte) (Summary, error) {
	var s Summary
	root, err := parseDocument(b)
	if err != nil {
		return s, malformed("", "", err)
	}
	if root == nil {
		return s, nil
	}
	if root.Kind != yaml.MappingNode {
		return s, malformed("", "", fmt.Errorf("document is a %s, want a mapping", kindName(root)))
	}
	seen := make(map[string]bool, len(root.Content)/2)
	// Undocumented keys are decoded in one pass at the end, so yaml's alias
	// expansion limit applies to all of them together.
	extra := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := resolve(root.Content[i]), resolve(root.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return s, malformed("", "", fmt.Errorf("line %d: key is a %s, want a scalar", kn.Line, kindName(kn)))
		}
		key := kn.Value
		if seen[key] {
			return s, malformed("", key, fmt.Errorf("line %d: duplicate key", kn.Line))
		}
		seen[key] = true
		if !summaryKeys[key] {
			// Keys keep their text (an int key 7 becomes "7") and are
			// never merge keys.
			extra.Content = append(extra.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, root.Content[i+1])
			continue
		}
		str, present, err := scalarString(vn)
		if err != nil {
			return s, malformed("", key, err)
		}
		if !present {
			continue
		}
		switch key {
		case KeyHostname:
			s.Hostname = str
		case KeyAvailabilityZone:
			s.AvailabilityZone = str
		case KeyRegion:
			s.Region = str
		case KeyInstanceID:
			id, err := parseInt(vn, 1)
			if err != nil {
				return s, malformed("", key, err)
			}
			s.InstanceID = id
		case KeyPublicIPv4:
			a, err := parseIPv4(str, true)
			if err != nil {
				return s, malformed("", key, err)
			}
			s.PublicIPv4 = a
		}
	}
	if len(extra.Content) > 0 {
		var m map[string]any
		if err := extra.Decode(&m); err != nil {
			return s, malformed("", "", fmt.Errorf("undocumented keys: %w", err))
		}
		s.Extra = normalize(m).(map[string]any)
	}
	return s, nil
}

// Map renders s with the service's key names and JSON/YAML-friendly values
// (instance-id as int64, addresses as strings, Extra as decoded). Documented
// keys with zero values are left out, as ParseSummary reads a missing key as
// zero. The map is a fresh copy; Extra's values are shared, not deep-copied.
func (s Summary) Map() map[string]any {
	m := make(map[string]any, len(s.Extra)+5)
	maps.Copy(m, s.Extra)
	if s.AvailabilityZone != "" {
		m[KeyAvailabilityZone] = s.AvailabilityZone
	}
	if s.Hostname != "" {
		m[KeyHostname] = s.Hostname
	}
	if s.InstanceID != 0 {
		m[KeyInstanceID] = s.InstanceID
	}
	if s.PublicIPv4.IsValid() {
		m[KeyPublicIPv4] = s.PublicIPv4.String()
	}
	if s.Region != "" {
		m[KeyRegion] = s.Region
	}
	return m
}

// MarshalSummary renders s as the service's summary document: YAML, keys
// sorted, Extra included. It fails when Extra repeats a documented key or a
// field would not parse back (a negative InstanceID, a non-IPv4 PublicIPv4).
func MarshalSummary(s Summary) ([]byte, error) {
	for k := range s.Extra {
		if summaryKeys[k] {
			return nil, fmt.Errorf("marshal metadata summary: extra key %q shadows a documented key", k)
		}
	}
	if s.InstanceID < 0 {
		return nil, fmt.Errorf("marshal metadata summary: instance-id %d is negative", s.InstanceID)
	}
	if s.PublicIPv4.IsValid() && !s.PublicIPv4.Is4() {
		return nil, fmt.Errorf("marshal metadata summary: public-ipv4 %v is not IPv4", s.PublicIPv4)
	}
	b, err := marshalYAML(s.Map())
	if err != nil {
		return nil, fmt.Errorf("marshal metadata summary: %w", err)
	}
	return b, nil
}

// ParsePrivateNetworks parses the private-networks document, a YAML sequence
// of mappings. An empty body (or an empty or null sequence) means the server
// is attached to no network and yields an empty slice.
//
// Validation: ip, mac_address, network_id, network and gateway are required;
// ip, gateway and every alias IP must be IPv4 addresses inside network; subnet
// is optional but, when present, must lie inside network; network and subnet
// must be canonical (no host bits); mac_address must be a 6-byte MAC;
// network_id must be positive; interface_num, when present, must not be
// negative. alias_ips may be missing, null or empty: all read as nil. Keys the
// reference does not document are ignored, so a newer service does not break
// older agents. Every failure is a KindMalformed error naming the field, for
// example "[1].alias_ips[0]".
func ParsePrivateNetworks(b []byte) ([]PrivateNetwork, error) {
	root, err := parseDocument(b)
	if err != nil {
		return nil, malformed(KeyPrivateNetworks, "", err)
	}
	if root == nil {
		return []PrivateNetwork{}, nil
	}
	if root.Kind != yaml.SequenceNode {
		return nil, malformed(KeyPrivateNetworks, "", fmt.Errorf("document is a %s, want a sequence", kindName(root)))
	}
	out := make([]PrivateNetwork, 0, len(root.Content))
	for i, n := range root.Content {
		pn, field, err := parsePrivateNetwork(resolve(n))
		if err != nil {
			return nil, malformed(KeyPrivateNetworks, "["+strconv.Itoa(i)+"]"+field, err)
		}
		out = append(out, pn)
	}
	return out, nil
}

// parsePrivateNetwork parses one entry. On error it returns the field suffix
// (".ip", ".alias_ips[1]", or "" for the entry itself).
func parsePrivateNetwork(n *yaml.Node) (PrivateNetwork, string, error) {
	var pn PrivateNetwork
	if n.Kind != yaml.MappingNode {
		return pn, "", fmt.Errorf("entry is a %s, want a mapping", kindName(n))
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := resolve(n.Content[i]), resolve(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return pn, "", fmt.Errorf("line %d: key is a %s, want a scalar", kn.Line, kindName(kn))
		}
		key := kn.Value
		field := "." + key
		if seen[key] {
			return pn, field, fmt.Errorf("line %d: duplicate key", kn.Line)
		}
		seen[key] = true
		if key == "alias_ips" {
			aliases, idx, err := parseAliasIPs(vn)
			if err != nil {
				if idx >= 0 {
					field += "[" + strconv.Itoa(idx) + "]"
				}
				return pn, field, err
			}
			pn.AliasIPs = aliases
			continue
		}
		if !privateNetworkKeys[key] {
			continue // undocumented: tolerated and dropped
		}
		str, present, err := scalarString(vn)
		if err != nil {
			return pn, field, err
		}
		if !present {
			continue // null reads as absent; required fields are checked below
		}
		switch key {
		case "ip":
			pn.IP, err = parseIPv4(str, false)
		case "gateway":
			pn.Gateway, err = parseIPv4(str, false)
		case "network":
			pn.Network, err = parseIPv4Prefix(str)
		case "subnet":
			pn.Subnet, err = parseIPv4Prefix(str)
		case "mac_address":
			pn.MACAddress, err = parseMAC(str)
		case "network_name":
			pn.NetworkName = str
		case "network_id":
			pn.NetworkID, err = parseInt(vn, 1)
		case "interface_num":
			var v int64
			v, err = parseInt(vn, 0)
			if err == nil && int64(int(v)) != v {
				err = fmt.Errorf("%d is out of range", v)
			}
			pn.InterfaceNum = int(v)
		}
		if err != nil {
			return pn, field, err
		}
	}
	field, err := validatePrivateNetwork(pn)
	return pn, field, err
}

var privateNetworkKeys = map[string]bool{
	"ip": true, "alias_ips": true, "interface_num": true, "mac_address": true,
	"network_id": true, "network_name": true, "network": true, "subnet": true,
	"gateway": true,
}

// validatePrivateNetwork checks the cross-field rules of an entry whose
// fields each parsed; it returns the offending field suffix.
func validatePrivateNetwork(pn PrivateNetwork) (string, error) {
	switch {
	case !pn.IP.IsValid():
		return ".ip", errors.New("missing")
	case len(pn.MACAddress) == 0:
		return ".mac_address", errors.New("missing")
	case pn.NetworkID == 0:
		return ".network_id", errors.New("missing")
	case !pn.Network.IsValid():
		return ".network", errors.New("missing")
	case !pn.Gateway.IsValid():
		return ".gateway", errors.New("missing")
	}
	// Private networks are IPv4-only and layer 3: every address hc-agent
	// configures or routes through must belong to the network. The gateway is
	// the network's first address, which need not lie inside the subnet.
	if !pn.IP.Is4() || !pn.Network.Contains(pn.IP) {
		return ".ip", fmt.Errorf("%v is not inside network %v", pn.IP, pn.Network)
	}
	if !pn.Gateway.Is4() || !pn.Network.Contains(pn.Gateway) {
		return ".gateway", fmt.Errorf("%v is not inside network %v", pn.Gateway, pn.Network)
	}
	for i, a := range pn.AliasIPs {
		if !a.Is4() || !pn.Network.Contains(a) {
			return ".alias_ips[" + strconv.Itoa(i) + "]", fmt.Errorf("%v is not inside network %v", a, pn.Network)
		}
	}
	if pn.Subnet.IsValid() && (pn.Subnet.Bits() < pn.Network.Bits() || !pn.Network.Contains(pn.Subnet.Addr())) {
		return ".subnet", fmt.Errorf("%v is not inside network %v", pn.Subnet, pn.Network)
	}
	if len(pn.MACAddress) != 6 {
		return ".mac_address", fmt.Errorf("%v is not a 6-byte MAC address", pn.MACAddress)
	}
	if pn.NetworkID < 0 {
		return ".network_id", fmt.Errorf("%d is not positive", pn.NetworkID)
	}
	if pn.InterfaceNum < 0 {
		return ".interface_num", fmt.Errorf("%d is negative", pn.InterfaceNum)
	}
	return "", nil
}

// parseAliasIPs parses alias_ips. On error it returns the index of the bad
// element, or -1 when the value itself is wrong.
func parseAliasIPs(n *yaml.Node) ([]netip.Addr, int, error) {
	if isNull(n) {
		return nil, -1, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, -1, fmt.Errorf("value is a %s, want a sequence", kindName(n))
	}
	var out []netip.Addr // empty stays nil: nil and [] mean the same
	for i, e := range n.Content {
		e = resolve(e)
		if e.Kind != yaml.ScalarNode || isNull(e) {
			return nil, i, fmt.Errorf("value is a %s, want an address", kindName(e))
		}
		a, err := parseIPv4(e.Value, false)
		if err != nil {
			return nil, i, err
		}
		out = append(out, a)
	}
	return out, -1, nil
}

// privateNetworkDoc is the wire form of one private-networks entry, in the
// reference's key order.
type privateNetworkDoc struct {
	IP           string   `yaml:"ip" json:"ip"`
	AliasIPs     []string `yaml:"alias_ips,flow" json:"alias_ips"`
	InterfaceNum int      `yaml:"interface_num" json:"interface_num"`
	MACAddress   string   `yaml:"mac_address" json:"mac_address"`
	NetworkID    int64    `yaml:"network_id" json:"network_id"`
	NetworkName  string   `yaml:"network_name" json:"network_name"`
	Network      string   `yaml:"network" json:"network"`
	Subnet       string   `yaml:"subnet,omitempty" json:"subnet,omitempty"`
	Gateway      string   `yaml:"gateway" json:"gateway"`
}

func toDoc(pn PrivateNetwork) privateNetworkDoc {
	d := privateNetworkDoc{
		IP:           pn.IP.String(),
		AliasIPs:     make([]string, 0, len(pn.AliasIPs)),
		InterfaceNum: pn.InterfaceNum,
		MACAddress:   pn.MACAddress.String(),
		NetworkID:    pn.NetworkID,
		NetworkName:  pn.NetworkName,
		Network:      pn.Network.String(),
		Gateway:      pn.Gateway.String(),
	}
	for _, a := range pn.AliasIPs {
		d.AliasIPs = append(d.AliasIPs, a.String())
	}
	if pn.Subnet.IsValid() {
		d.Subnet = pn.Subnet.String()
	}
	return d
}

// MarshalPrivateNetworks renders pns in the reference's format (key order,
// two-space indent, alias_ips in flow style), so a simulated metadata service
// can serve it. Each entry must pass the checks ParsePrivateNetworks makes,
// so that the output always parses back to the same value. An empty slice
// renders as "[]".
func MarshalPrivateNetworks(pns []PrivateNetwork) ([]byte, error) {
	docs := make([]privateNetworkDoc, 0, len(pns))
	for i, pn := range pns {
		if field, err := validatePrivateNetwork(pn); err != nil {
			return nil, fmt.Errorf("marshal metadata private-networks: field [%d]%s: %w", i, field, err)
		}
		if pn.Network != pn.Network.Masked() {
			return nil, fmt.Errorf("marshal metadata private-networks: field [%d].network: %v has host bits set", i, pn.Network)
		}
		if pn.Subnet.IsValid() && pn.Subnet != pn.Subnet.Masked() {
			return nil, fmt.Errorf("marshal metadata private-networks: field [%d].subnet: %v has host bits set", i, pn.Subnet)
		}
		docs = append(docs, toDoc(pn))
	}
	b, err := marshalYAML(docs)
	if err != nil {
		return nil, fmt.Errorf("marshal metadata private-networks: %w", err)
	}
	return b, nil
}

// PrivateNetworksValue renders pns with the service's key names and
// JSON/YAML-friendly values (addresses as strings, alias_ips never null),
// for printing. A missing subnet is left out.
func PrivateNetworksValue(pns []PrivateNetwork) []map[string]any {
	out := make([]map[string]any, 0, len(pns))
	for _, pn := range pns {
		d := toDoc(pn)
		m := map[string]any{
			"ip":            d.IP,
			"alias_ips":     d.AliasIPs,
			"interface_num": d.InterfaceNum,
			"mac_address":   d.MACAddress,
			"network_id":    d.NetworkID,
			"network_name":  d.NetworkName,
			"network":       d.Network,
			"gateway":       d.Gateway,
		}
		if d.Subnet != "" {
			m["subnet"] = d.Subnet
		}
		out = append(out, m)
	}
	return out
}

// ParseInstanceID parses the instance-id sub-path: a positive decimal
// integer, surrounding whitespace ignored. An empty body is an error, as a
// server always has an ID and "self" is identified by it.
func ParseInstanceID(b []byte) (int64, error) {
	id, err := parseInstanceID(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, malformed(KeyInstanceID, "", err)
	}
	return id, nil
}

func parseInstanceID(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty value")
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if id <= 0 {
		return 0, fmt.Errorf("%d is not positive", id)
	}
	return id, nil
}

// ParsePublicIPv4 parses the public-ipv4 sub-path. An empty body yields the
// zero Addr (a server without a public IPv4 address); anything else must be
// an IPv4 address.
func ParsePublicIPv4(b []byte) (netip.Addr, error) {
	a, err := parseIPv4(string(bytes.TrimSpace(b)), true)
	if err != nil {
		return netip.Addr{}, malformed(KeyPublicIPv4, "", err)
	}
	return a, nil
}

// parseIPv4 parses an IPv4 address; allowEmpty maps "" to the zero Addr.
func parseIPv4(s string, allowEmpty bool) (netip.Addr, error) {
	if s == "" && allowEmpty {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%v is not an IPv4 address", a)
	}
	return a, nil
}

// parseIPv4Prefix parses a canonical IPv4 network such as 10.0.0.0/8.
func parseIPv4Prefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%v is not an IPv4 network", p)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%v has host bits set (want %v)", p, p.Masked())
	}
	return p, nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil {
		return nil, err
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("%v is not a 6-byte MAC address", mac)
	}
	return mac, nil
}

// parseInt parses an integer scalar (YAML int syntax) that must be >= min.
func parseInt(n *yaml.Node, min int64) (int64, error) {
	if n.ShortTag() != "!!int" {
		return 0, fmt.Errorf("%q is not an integer", n.Value)
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, fmt.Errorf("%q: %w", n.Value, err)
	}
	if v < min {
		return 0, fmt.Errorf("%d is less than %d", v, min)
	}
	return v, nil
}

// parseDocument decodes exactly one YAML document. It returns nil for an
// empty body or a null document.
func parseDocument(b []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // only comments or document markers
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, errors.New("more than one YAML document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	return root, nil
}

// resolve follows aliases so callers see the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// scalarString returns a scalar's text. present is false for null.
func scalarString(n *yaml.Node) (s string, present bool, err error) {
	if n.Kind != yaml.ScalarNode {
		return "", false, fmt.Errorf("value is a %s, want a scalar", kindName(n))
	}
	if isNull(n) {
		return "", false, nil
	}
	return n.Value, true, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.DocumentNode:
		return "document"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	default:
		return "node of kind " + strconv.Itoa(int(n.Kind))
	}
}

// normalize turns the map[any]any that yaml produces for mappings with
// non-string keys into map[string]any, so Extra always encodes as JSON as
// well as YAML.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	case float64:
		// yaml writes -0.0 as "-0", which reads back as the int 0; +0 is
		// written "0" and stays put.
		if t == 0 {
			return float64(0)
		}
		return t
	default:
		return v
	}
}

// marshalYAML encodes v with the two-space indent the service uses.
func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// trimText returns a text sub-path's value without surrounding whitespace.
func trimText(b []byte) string { return strings.TrimSpace(string(b)) }
