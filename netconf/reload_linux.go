package netconf

import "slices"

// SetOptions gives a running reconciler new private-network settings (a
// configuration reload) and reconciles at once, reading the kernel. The poll
// interval stays what it was: Run reads it without the lock, and it belongs
// to the metadata settings, which a reload does not change.
func (r *Reconciler) SetOptions(o Options) {
	r.mu.Lock()
	r.opts.Disabled = o.Disabled
	r.opts.MTU = o.MTU
	r.opts.DefaultRoute = o.DefaultRoute
	r.opts.DefaultRouteMetric = o.DefaultRouteMetric
	r.opts.Exclude = slices.Clone(o.Exclude)
	r.opts.PinMetadataRoute = o.PinMetadataRoute
	r.mu.Unlock()
	r.dirty.Store(true) // the desired state may differ: read and apply
	r.Trigger()
}
