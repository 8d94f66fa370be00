package netconf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
)

// RunOnce is `hc-agent apply`: it reads the private networks from src,
// computes the desired state and either prints the plan (dryRun, nothing is
// changed) or applies it once and prints what it changed. ownedPath is the
// ownership record shared with the daemon ("" keeps it in memory). It
// returns an error when metadata cannot be read or any write failed; a
// metadata error changes nothing.
//
// The metadata route is checked (and with opts.PinMetadataRoute pinned, or
// in a dry run planned) before metadata is read: the black hole would make
// the read time out, and its error then names the route to blame.
func RunOnce(ctx context.Context, opts Options, src Source, h nlHandle, ownedPath string, out io.Writer, dryRun bool) error {
	pin := opts.PinMetadataRoute && !opts.Disabled
	mc, mcErr := CheckMetadataRoute(ctx, h, pin, dryRun)
	if !dryRun {
		fmt.Fprint(out, FormatChanges(mc.Changes))
	}
	nets, err := src.PrivateNetworks(ctx)
	if err != nil {
		if dryRun {
			fmt.Fprint(out, FormatChanges(mc.Changes))
		}
		err = fmt.Errorf("read private networks from metadata: %w", err)
		if hint := mc.Hint(pin); mcErr == nil && hint != "" {
			err = fmt.Errorf("%w; %s", err, hint)
		}
		return err
	}
	owned := Owned{}
	owned.normalize()
	if ownedPath != "" {
		if owned, err = LoadOwned(ownedPath); err != nil {
			return err
		}
	}
	desired := Desired(nets, opts)
	if desired.Disabled {
		fmt.Fprintln(out, "private network management is disabled: nothing to do")
		return nil
	}
	for _, p := range desired.Problems {
		fmt.Fprintf(out, "skip %s\n", p)
	}
	if dryRun {
		changes, err := Plan(ctx, h, desired, owned)
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			fmt.Fprintln(out, "nothing to change")
			return nil
		}
		fmt.Fprint(out, FormatChanges(changes))
		return nil
	}
	before := owned.Clone()
	res, applyErr := Apply(ctx, h, desired, &owned)
	for _, m := range res.MissingLinks {
		fmt.Fprintf(out, "waiting for nic %s: metadata lists it, the host has no such link yet\n", m)
	}
	if len(res.Changes) == 0 && len(mc.Changes) == 0 && applyErr == nil {
		fmt.Fprintln(out, "nothing to change")
	}
	fmt.Fprint(out, FormatChanges(res.Changes))
	if res.MetadataBlackholed {
		fmt.Fprintf(out, "warning: the metadata service is routed through private nic %s\n", res.MetadataRoute.Dev)
	}
	if ownedPath != "" && !slices.Equal(before.Addresses, owned.Addresses) {
		// Saved even after a partial failure: the record must list every
		// address that was added, or a later run could not remove it.
		if err := SaveOwned(ownedPath, owned); err != nil {
			applyErr = errors.Join(applyErr, err)
		}
	}
	return applyErr
}
