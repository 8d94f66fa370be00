package agent

import (
	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/netconf"
)

// NetconfOptions maps the configuration onto netconf.Options; the daemon
// and "hc-agent apply" share it so that both configure the same thing.
func NetconfOptions(cfg config.Config) netconf.Options {
	pn := cfg.PrivateNetworks
	return netconf.Options{
		Disabled:           !pn.IsEnabled(),
		MTU:                pn.MTU,
		DefaultRoute:       pn.DefaultRoute,
		DefaultRouteMetric: pn.DefaultRouteMetric,
		Exclude:            pn.Exclude,
		PinMetadataRoute:   pn.PinMetadataRoute,
		PollInterval:       cfg.Metadata.PollInterval,
		GroupIPs:           cfg.GroupPrivateIPs(),
	}
}
