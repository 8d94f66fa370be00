package simcloud

import (
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
	body, ok, err := renderMetadataKey(view, key)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(body)
}

// renderMetadataKey renders one metadata document: the summary for the
// empty key, otherwise the sub-path's value. ok is false for unknown keys.
func renderMetadataKey(v metadataView, key string) (body []byte, ok bool, err error) {
	s := v.Summary
	switch key {
	case "":
		b, err := renderSummary(s)
		return b, true, err
	case "hostname":
		return []byte(s.Hostname), true, nil
	case "instance-id":
		return []byte(strconv.FormatInt(s.InstanceID, 10)), true, nil
	case "public-ipv4":
		if !s.PublicIPv4.IsValid() {
			return nil, true, nil
		}
		return []byte(s.PublicIPv4.String()), true, nil
	case "availability-zone":
		return []byte(s.AvailabilityZone), true, nil
	case "region":
		return []byte(s.Region), true, nil
	case "private-networks":
		b, err := renderPrivateNetworks(v.PrivateNetworks)
		return b, true, err
	}
	return nil, false, nil
}

// renderSummary renders the summary document with the metadata package's
// marshaller, so the simulator and the agent's parser share one format.
func renderSummary(s metadata.Summary) ([]byte, error) {
	return metadata.MarshalSummary(s)
}

// renderPrivateNetworks renders the private-networks document with the
// metadata package's marshaller ("[]" when empty).
func renderPrivateNetworks(nets []metadata.PrivateNetwork) ([]byte, error) {
	return metadata.MarshalPrivateNetworks(nets)
}
