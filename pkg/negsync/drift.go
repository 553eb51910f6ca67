package negsync

import (
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Drift found from sizes. The periodic NEG listing (an aggregatedList the controller makes every
// GC period for its index and garbage collection) returns each NEG's size, its endpoint count.
// When it differs from the number of endpoints believed attached, someone changed the NEG
// behind the controller's back: CheckSizes marks the NEG's endpoints unknown, so that the next
// Refresh lists it, and the controller syncs its Service at once. An endpoint detached or
// attached by hand is thus repaired within a GC period plus a sync and an operation, at no
// extra read; the per-NEG listing every VerifyPeriod remains for what sizes cannot show (an
// endpoint swapped for another, the count unchanged).

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

// Drift is one NEG whose size contradicted what the Syncer believed.
type Drift struct {
	Ref neg.Ref
	// Owner is the Service whose sync last made the NEG's endpoints known.
	Owner    cache.ObjectName
	Believed int
	Size     int64
}

// Sequence returns the current sequence number: pass it to CheckSizes for a NEG listing
// started now.
func (s *Syncer) Sequence() uint64 { return s.seq.Load() }

// CheckSizes compares the sizes of listed, a NEG listing that started at sequence number
// listStart, with the known endpoints (see sizeDrift). Every NEG that drifted has its
// endpoints marked unknown, so that its next Refresh lists it, and is returned.
func (s *Syncer) CheckSizes(listed []gce.NEG, listStart uint64) []Drift {
	var out []Drift
	for i := range listed {
		ref := listed[i].Ref()
		st := s.lookup(ref)
		if st == nil {
			continue
		}
		st.mu.Lock()
		v := sizeView{known: st.current != nil, count: st.current.Len(), inFlight: len(st.inFlight),
			listing: st.listing, changedSeq: st.changedSeq}
		if sizeDrift(v, listed[i].Size, listStart) {
			out = append(out, Drift{Ref: ref, Owner: st.owner, Believed: v.count, Size: listed[i].Size})
			st.current = nil
		}
		st.mu.Unlock()
	}
	return out
}
