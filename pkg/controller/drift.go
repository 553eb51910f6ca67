package controller

import (
	"context"

	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/negsync"
)

// Drift found from sizes: refreshIndex hands every NEG listing to negsync.Syncer.CheckSizes,
// which marks the NEGs whose size contradicts what is believed as unknown; repairDrift then
// syncs their Services at once, which lists and repairs them (see pkg/negsync/drift.go).

// repairDrift handles the NEGs checkSizes found drifted: logged, counted, and their Services
// synced at once.
func (c *Controller) repairDrift(ctx context.Context, found []negsync.Drift) {
	for _, d := range found {
		klog.FromContext(ctx).V(2).Info("NEG changed outside the controller (size differs); listing it again",
			"neg", d.Ref.Name, "zone", d.Ref.Zone, "service", klog.KRef(d.Owner.Namespace, d.Owner.Name),
			"believed", d.Believed, "size", d.Size)
		c.cfg.Metrics.AddDrift(metrics.DriftSourceSize, 1)
		if d.Owner.Name != "" {
			c.queue.Add(d.Owner)
		}
	}
}
