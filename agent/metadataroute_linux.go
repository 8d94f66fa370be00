package agent

import (
	"context"
	"log/slog"

	"github.com/vishvananda/netlink"

	"github.com/hc-agent/hc-agent/config"
	"github.com/hc-agent/hc-agent/netconf"
)

// metadataRouteCheck is Deps.CheckMetadataRoute over h: netconf's check and
// pin of the metadata route, which needs no metadata.
func metadataRouteCheck(h *netlink.Handle, cfg config.Config, log *slog.Logger) func(context.Context) (bool, string) {
	opts := NetconfOptions(cfg)
	pin := opts.PinMetadataRoute && !opts.Disabled
	return func(ctx context.Context) (bool, string) {
		mc, err := netconf.CheckMetadataRoute(ctx, h, pin, false)
		if err != nil {
			log.Warn("check metadata route", "err", err)
			return false, ""
		}
		for _, c := range mc.Changes {
			log.Info("private network change", "op", string(c.Op), "kind", c.Kind, "object", c.Object, "dev", c.Dev, "reason", c.Reason)
		}
		return mc.Blackholed, mc.Hint(pin)
	}
}
