package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/negstatus"
)

// statusValue renders the neg-status (or hybrid-neg-status) annotation of s in GKE's format
// (negstatus.Value): every wanted port with its NEG name, and the zones where a NEG of ours for
// the Service actually exists.
func (c *Controller) statusValue(s *serviceSync, tasks []*negTask) string {
	names := make(map[int32]string, len(s.want))
	for port, p := range s.want {
		names[port] = p.Name
	}
	var zones []string
	for _, t := range tasks {
		if !t.remove && c.serves(s, t, c.index.Get(t.ref)) {
			zones = append(zones, t.ref.Zone)
		}
	}
	return negstatus.Value(names, zones)
}

// writeStatus sets (or removes) the status annotation of the Service's source with a merge
// patch, only when its value changes. The other status annotation is removed in the same patch
// when present and written by no other controller (negstatus.Changes).
func (c *Controller) writeStatus(ctx context.Context, s *serviceSync, tasks []*negTask) error {
	if s.svc == nil {
		return nil
	}
	value := ""
	if s.src.StatusKey != "" {
		value = c.statusValue(s, tasks)
	}
	changes := negstatus.Changes(s.svc, s.src.StatusKey, value)
	if len(changes) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(changes))
	if err := negstatus.Patch(ctx, c.cfg.KubeClient, s.key, changes); err != nil {
		c.warn(s.key, s.target, slotStatus, ReasonStatusUpdateFailed, fmt.Sprintf("Failed to update annotation: %v", err))
		return err
	}
	c.warnings.Clear(s.key, slotStatus)
	klog.FromContext(ctx).V(2).Info("Updated NEG status", "annotations", keys, "value", changes[s.src.StatusKey])
	return nil
}
