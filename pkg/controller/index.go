package controller

import (
	"sort"
	"sync"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// negIndex is the controller's in-memory view of the NEGs that exist in GCE: every NEG seen by
// the last ListNEGs plus our own creates and deletes since. It answers "does this NEG exist"
// without a GET, so a restart with NEGs already present makes no insert calls, and "which
// NEGs does this Service own", for removal and garbage collection.
//
// Refresh replaces the view with a listing but keeps the entries our own calls changed after
// the listing started (tracked with a generation counter), so a slow listing never undoes a
// create or delete it did not see.
type negIndex struct {
	rule ownershipRule

	mu  sync.Mutex
	gen uint64
	// negs holds every known NEG; a nil value is a tombstone for a NEG we deleted.
	negs map[neg.Ref]*indexEntry
	// owned maps a Service to the refs of the NEGs whose description names it and our cluster.
	owned map[cache.ObjectName]map[neg.Ref]struct{}
}

// indexEntry is one NEG of the index.
type indexEntry struct {
	neg gce.NEG // zero for tombstones
	// desc is the parsed description; verdict says whether the NEG is ours (see ownershipRule);
	// ours is true for ownedGenerated and ownedCustom (and hybridController when adopting).
	desc    naming.Description
	verdict verdict
	ours    bool
	// claimed records that a sync of the owning Service used this custom-named NEG since the
	// controller started: the proof that the Service claimed the name, kept after the claim
	// is dropped so that the NEG can be removed.
	claimed bool
	deleted bool
	gen     uint64
}

func newNEGIndex(rule ownershipRule) *negIndex {
	return &negIndex{rule: rule, negs: map[neg.Ref]*indexEntry{},
		owned: map[cache.ObjectName]map[neg.Ref]struct{}{}}
}

// generation returns the current generation, to pass to refresh for a listing started now.
func (x *negIndex) generation() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.gen
}

// refresh replaces the view with listed, a ListNEGs result whose call started at generation
// startGen; entries changed by our own calls after startGen are kept as they are. It returns
// the Services that lost a NEG of theirs (deleted outside the controller), sorted.
func (x *negIndex) refresh(listed []gce.NEG, startGen uint64) []cache.ObjectName {
	x.mu.Lock()
	defer x.mu.Unlock()
	lost := map[cache.ObjectName]bool{}
	seen := make(map[neg.Ref]bool, len(listed))
	for i := range listed {
		ref := listed[i].Ref()
		seen[ref] = true
		if e := x.negs[ref]; e != nil && e.gen > startGen {
			continue
		}
		x.setLocked(ref, listed[i], false)
	}
	for ref, e := range x.negs {
		if !seen[ref] && e.gen <= startGen {
			if e.ours && !e.deleted {
				lost[cache.ObjectName{Namespace: e.desc.Namespace, Name: e.desc.ServiceName}] = true
			}
			x.removeLocked(ref)
		}
	}
	out := make([]cache.ObjectName, 0, len(lost))
	for k := range lost {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// put records a NEG we created or found.
func (x *negIndex) put(n gce.NEG) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setLocked(n.Ref(), n, true)
}

// putOwned records a NEG we adopted although its description does not name us (a generated
// name with an empty description, as GKE adopts), attributing it to want.
func (x *negIndex) putOwned(n gce.NEG, want naming.Description) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ref := n.Ref()
	x.setLocked(ref, n, true)
	e := x.negs[ref]
	x.unownLocked(ref, e)
	e.desc, e.ours, e.verdict = want, true, ownedGenerated
	x.ownLocked(ref, e)
}

// markClaimed records that the owning Service uses the custom-named NEG ref.
func (x *negIndex) markClaimed(ref neg.Ref) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.negs[ref]; e != nil && !e.deleted {
		e.claimed = true
	}
}

// named returns the entries of the existing NEGs called name, in any zone.
func (x *negIndex) named(name string) []indexEntry {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []indexEntry
	for ref, e := range x.negs {
		if ref.Name == name && !e.deleted {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].neg.Zone < out[j].neg.Zone })
	return out
}

// unowned counts the NEGs whose description names this cluster but that are not ours, by
// reason (a metrics label), and returns them for logging.
func (x *negIndex) unowned() (map[string]int, []indexEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	counts := map[string]int{}
	var out []indexEntry
	for _, e := range x.negs {
		if e.deleted {
			continue
		}
		if r := e.verdict.unownedReason(); r != "" {
			counts[r]++
			out = append(out, *e)
		}
	}
	return counts, out
}

// remove records that a NEG no longer exists (we deleted it, or GCE answered NotFound).
func (x *negIndex) remove(ref neg.Ref) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	if e := x.negs[ref]; e != nil {
		x.unownLocked(ref, e)
	}
	x.negs[ref] = &indexEntry{deleted: true, gen: x.gen}
}

// get returns the entry of ref, or nil when the NEG is not known to exist.
func (x *negIndex) get(ref neg.Ref) *indexEntry {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.negs[ref]
	if e == nil || e.deleted {
		return nil
	}
	cp := *e
	return &cp
}

// ownedBy returns the entries of the NEGs whose description names svc, sorted by ref.
func (x *negIndex) ownedBy(svc cache.ObjectName) map[neg.Ref]indexEntry {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[neg.Ref]indexEntry, len(x.owned[svc]))
	for ref := range x.owned[svc] {
		out[ref] = *x.negs[ref]
	}
	return out
}

// owners returns every Service that owns at least one NEG, sorted.
func (x *negIndex) owners() []cache.ObjectName {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]cache.ObjectName, 0, len(x.owned))
	for k := range x.owned {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (x *negIndex) setLocked(ref neg.Ref, n gce.NEG, local bool) {
	if old := x.negs[ref]; old != nil {
		x.unownLocked(ref, old)
	}
	e := &indexEntry{neg: n}
	if old := x.negs[ref]; old != nil && !old.deleted {
		e.claimed = old.claimed
	}
	if local {
		x.gen++
		e.gen = x.gen
	}
	e.desc, e.verdict = x.rule.judge(n)
	e.ours = x.rule.ours(e.verdict)
	x.negs[ref] = e
	x.ownLocked(ref, e)
}

func (x *negIndex) removeLocked(ref neg.Ref) {
	if e := x.negs[ref]; e != nil {
		x.unownLocked(ref, e)
	}
	delete(x.negs, ref)
}

func (x *negIndex) ownLocked(ref neg.Ref, e *indexEntry) {
	if !e.ours {
		return
	}
	k := cache.ObjectName{Namespace: e.desc.Namespace, Name: e.desc.ServiceName}
	if x.owned[k] == nil {
		x.owned[k] = map[neg.Ref]struct{}{}
	}
	x.owned[k][ref] = struct{}{}
}

func (x *negIndex) unownLocked(ref neg.Ref, e *indexEntry) {
	if !e.ours {
		return
	}
	k := cache.ObjectName{Namespace: e.desc.Namespace, Name: e.desc.ServiceName}
	delete(x.owned[k], ref)
	if len(x.owned[k]) == 0 {
		delete(x.owned, k)
	}
}
