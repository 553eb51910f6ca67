package controller

import (
	"context"

	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Drift found from sizes. The periodic NEG listing (ListNEGs, an aggregatedList made every
// GCPeriod for the index and garbage collection) returns each NEG's size, its endpoint count.
// When it differs from the number of endpoints the controller believes attached, someone
// changed the NEG behind the controller's back: the NEG's current set is marked unknown and its
// Service synced at once, which lists the NEG and repairs it. An endpoint detached or attached
// by hand is thus repaired within a GC period plus a sync and an operation, at no extra read;
// the per-NEG listing every NEGVerifyPeriod remains for what sizes cannot show (an endpoint swapped
// for another, the count unchanged).

// sizeView is what sizeDrift needs to know of one NEG's state.
type sizeView struct {
	// known reports whether the current set is known; count is its size.
	known bool
	count int
	// inFlight counts endpoints with a call in flight; listing is true while the NEG's
	// endpoints are being listed.
	inFlight int
	listing  bool
	// changedSeq is the sequence number of the NEG's last finished listing, creation or call.
	changedSeq uint64
}

// sizeDrift decides whether a NEG's size, from a NEG listing that started at sequence number
// listStart, proves the controller's view of the NEG wrong. The comparison is meaningful only
// when the listing saw the NEG after everything the controller knows happened to it:
//
//	current set unknown                         not meaningful (the next sync lists anyway)
//	a call in flight                            not meaningful (its effect may or may not show)
//	a listing of the NEG running                not meaningful (its result replaces current)
//	listing, creation or call finished after    not meaningful (the size may predate it)
//	  the NEG listing started (changedSeq > listStart)
//	otherwise                                   drift iff size != count
func sizeDrift(v sizeView, size int64, listStart uint64) bool {
	if !v.known || v.inFlight > 0 || v.listing || v.changedSeq > listStart {
		return false
	}
	return size != int64(v.count)
}

// drifted is one NEG whose size contradicted the controller's view.
type drifted struct {
	ref      neg.Ref
	owner    cache.ObjectName
	believed int
	size     int64
}

// checkSizes compares the sizes of listed, a NEG listing that started at sequence number
// listStart, with the known current sets (see sizeDrift). Every NEG that drifted has its
// current set marked unknown, so that its next sync lists it, and is returned.
func (s *negStates) checkSizes(listed []gce.NEG, listStart uint64) []drifted {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []drifted
	for i := range listed {
		ref := neg.Ref{Zone: listed[i].Zone, Name: listed[i].Name}
		st := s.m[ref]
		if st == nil {
			continue
		}
		v := sizeView{known: st.current != nil, count: st.current.Len(), inFlight: len(st.inFlight),
			listing: st.listing, changedSeq: st.changedSeq}
		if !sizeDrift(v, listed[i].Size, listStart) {
			continue
		}
		out = append(out, drifted{ref: ref, owner: st.owner, believed: v.count, size: listed[i].Size})
		st.current = nil
	}
	return out
}

// repairDrift handles the NEGs checkSizes found drifted: logged, counted, and their Services
// synced at once.
func (c *Controller) repairDrift(ctx context.Context, found []drifted) {
	for _, d := range found {
		klog.FromContext(ctx).V(2).Info("NEG changed outside the controller (size differs); listing it again",
			"neg", d.ref.Name, "zone", d.ref.Zone, "service", klog.KRef(d.owner.Namespace, d.owner.Name),
			"believed", d.believed, "size", d.size)
		c.cfg.Metrics.AddDrift(metrics.DriftSourceSize, 1)
		if d.owner.Name != "" {
			c.queue.Add(d.owner)
		}
	}
}
