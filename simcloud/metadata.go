package simcloud

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/hc-agent/hc-agent/metadata"
)

// metadataPath is the path prefix of the metadata service.
const metadataPath = "/hetzner/v1/metadata"

// metadataView is what the metadata service knows about one server.
type metadataView struct {
	Summary         metadata.Summary
	PrivateNetworks []metadata.PrivateNetwork
}

// metadataHandler answers metadata requests with the caller's own data. Like
// the real service, it identifies the caller by the TCP source address;
// lookup returns false for an address that belongs to no server, which is
// answered with 404.
type metadataHandler struct {
	lookup func(netip.Addr) (metadataView, bool)
}

// ServeHTTP implements http.Handler.
func (h metadataHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	src, err := netip.ParseAddr(host)
	if err != nil {
		http.Error(w, "bad remote address", http.StatusBadRequest)
		return
	}
	view, ok := h.lookup(src.Unmap())
	if !ok {
		http.NotFound(w, r)
		return
	}
	key, found := strings.CutPrefix(r.URL.Path, metadataPath)
	if !found {
		http.NotFound(w, r)
		return
	}
	key = strings.Trim(key, "/")
	body, ok := renderMetadataKey(view, key)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(body)
}

// renderMetadataKey renders one metadata document: the summary for the
// empty key, otherwise the sub-path's value. ok is false for unknown keys.
func renderMetadataKey(v metadataView, key string) (body []byte, ok bool) {
	s := v.Summary
	switch key {
	case "":
		return renderSummary(s), true
	case "hostname":
		return []byte(s.Hostname), true
	case "instance-id":
		return []byte(strconv.FormatInt(s.InstanceID, 10)), true
	case "public-ipv4":
		if !s.PublicIPv4.IsValid() {
			return nil, true
		}
		return []byte(s.PublicIPv4.String()), true
	case "availability-zone":
		return []byte(s.AvailabilityZone), true
	case "region":
		return []byte(s.Region), true
	case "private-networks":
		return renderPrivateNetworks(v.PrivateNetworks), true
	}
	return nil, false
}

// renderSummary renders the summary document in the reference's format.
//
// TODO(simcloud): switch to metadata.MarshalSummary when it lands so that
// the simulated cloud and the agent's parser share one definition.
func renderSummary(s metadata.Summary) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "availability-zone: %s\n", s.AvailabilityZone)
	fmt.Fprintf(&b, "hostname: %s\n", s.Hostname)
	fmt.Fprintf(&b, "instance-id: %d\n", s.InstanceID)
	if s.PublicIPv4.IsValid() {
		fmt.Fprintf(&b, "public-ipv4: %s\n", s.PublicIPv4)
	}
	fmt.Fprintf(&b, "region: %s\n", s.Region)
	return []byte(b.String())
}

// renderPrivateNetworks renders the private-networks document in the
// reference's format. An empty list is rendered as "[]".
//
// TODO(simcloud): switch to metadata.MarshalPrivateNetworks when it lands.
func renderPrivateNetworks(nets []metadata.PrivateNetwork) []byte {
	if len(nets) == 0 {
		return []byte("[]\n")
	}
	var b strings.Builder
	for _, n := range nets {
		aliases := make([]string, len(n.AliasIPs))
		for i, a := range n.AliasIPs {
			aliases[i] = a.String()
		}
		fmt.Fprintf(&b, "- ip: %s\n", n.IP)
		fmt.Fprintf(&b, "  alias_ips: [%s]\n", strings.Join(aliases, ", "))
		fmt.Fprintf(&b, "  interface_num: %d\n", n.InterfaceNum)
		fmt.Fprintf(&b, "  mac_address: %s\n", n.MACAddress)
		fmt.Fprintf(&b, "  network_id: %d\n", n.NetworkID)
		fmt.Fprintf(&b, "  network_name: %s\n", n.NetworkName)
		fmt.Fprintf(&b, "  network: %s\n", n.Network)
		fmt.Fprintf(&b, "  subnet: %s\n", n.Subnet)
		fmt.Fprintf(&b, "  gateway: %s\n", n.Gateway)
	}
	return []byte(b.String())
}
