package negindex

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Index is the view of the NEGs that exist in GCE: every NEG seen by the last ListNEGs plus our
// own creates and deletes since (see the package documentation for its invariants). Create it
// with New.
type Index struct {
	rule Rule

	mu  sync.Mutex
	gen uint64
	// negs holds every known NEG; an entry with deleted set is a tombstone for a NEG we deleted.
	negs map[neg.Ref]*Entry
	// owned maps a Service to the refs of the NEGs of ours whose description names it.
	owned map[cache.ObjectName]map[neg.Ref]struct{}
}

// Entry is one NEG of the index.
type Entry struct {
	// NEG is the NEG as last listed, created or found.
	NEG gce.NEG
	// Description is the parsed ownership description (for a NEG of k8s-hybrid-neg-controller,
	// the Service its markers name, without port); zero when the NEG does not name this cluster.
	Description naming.Description
	// Verdict is what the Rule says of the NEG; Ours is true when it makes the NEG ours
	// (OwnedGenerated, OwnedCustom, and HybridController when adopting; see Rule.Ours).
	Verdict Verdict
	Ours    bool
	// Claimed records that a sync of the owning Service used this custom-named NEG since the
	// controller started: the proof that the Service claimed the name, kept after the claim is
	// dropped so that the NEG can be removed.
	Claimed bool

	deleted bool
	gen     uint64 // the generation of our last local change, 0 when listed
}

// Service is the Service the entry's description names.
func (e Entry) Service() cache.ObjectName {
	return cache.ObjectName{Namespace: e.Description.Namespace, Name: e.Description.ServiceName}
}

// Port is the Service port the entry's description names; ok is false when it names none (a NEG
// of k8s-hybrid-neg-controller) or not a number.
func (e Entry) Port() (port int32, ok bool) { return descPort(e.Description) }

// descPort parses the port of a description; ok is false if it is not a port number.
func descPort(d naming.Description) (int32, bool) {
	p, err := strconv.ParseInt(strings.TrimSpace(d.Port), 10, 32)
	return int32(p), err == nil
}

// New returns an empty index whose entries rule judges.
func New(rule Rule) *Index {
	return &Index{rule: rule, negs: map[neg.Ref]*Entry{}, owned: map[cache.ObjectName]map[neg.Ref]struct{}{}}
}

// Rule returns the ownership rule the index judges NEGs with.
func (x *Index) Rule() Rule { return x.rule }

// Generation returns the current generation, to pass to Refresh for a listing started now.
func (x *Index) Generation() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.gen
}

// Refresh replaces the view with listed, a ListNEGs result whose call started at generation
// startGen; entries changed by our own calls after startGen are kept as they are. It returns
// the Services that lost a NEG of theirs (deleted outside the controller), sorted.
func (x *Index) Refresh(listed []gce.NEG, startGen uint64) []cache.ObjectName {
	x.mu.Lock()
	defer x.mu.Unlock()
	seen := make(map[neg.Ref]bool, len(listed))
	for i := range listed {
		ref := listed[i].Ref()
		seen[ref] = true
		if e := x.negs[ref]; e != nil && e.gen > startGen {
			continue
		}
		x.setLocked(ref, listed[i], false)
	}
	lost := map[cache.ObjectName]bool{}
	for ref, e := range x.negs {
		if !seen[ref] && e.gen <= startGen {
			if e.Ours && !e.deleted {
				lost[e.Service()] = true
			}
			x.removeLocked(ref)
		}
	}
	return sortedNames(lost)
}

// Put records a NEG we created or found.
func (x *Index) Put(n gce.NEG) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setLocked(n.Ref(), n, true)
}

// Adopt records a NEG we adopted although its description does not name us (a generated name
// with an empty description, as GKE adopts), attributing it to want.
func (x *Index) Adopt(n gce.NEG, want naming.Description) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ref := n.Ref()
	x.setLocked(ref, n, true)
	e := x.negs[ref]
	x.unownLocked(ref, e)
	e.Description, e.Ours, e.Verdict = want, true, OwnedGenerated
	x.ownLocked(ref, e)
}

// MarkClaimed records that the owning Service uses the custom-named NEG ref.
func (x *Index) MarkClaimed(ref neg.Ref) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.negs[ref]; e != nil && !e.deleted {
		e.Claimed = true
	}
}

// Remove records that a NEG no longer exists (we deleted it, or GCE answered NotFound).
func (x *Index) Remove(ref neg.Ref) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	if e := x.negs[ref]; e != nil {
		x.unownLocked(ref, e)
	}
	x.negs[ref] = &Entry{deleted: true, gen: x.gen}
}

// Get returns the entry of ref, or nil when the NEG is not known to exist.
func (x *Index) Get(ref neg.Ref) *Entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.negs[ref]
	if e == nil || e.deleted {
		return nil
	}
	cp := *e
	return &cp
}

// Named returns the entries of the existing NEGs called name, in any zone, sorted by zone.
func (x *Index) Named(name string) []Entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []Entry
	for ref, e := range x.negs {
		if ref.Name == name && !e.deleted {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NEG.Zone < out[j].NEG.Zone })
	return out
}

// Unowned counts the NEGs whose description names this cluster but that are not ours, by
// reason (the unowned_negs metric label, Verdict.UnownedReason), and returns them for logging.
func (x *Index) Unowned() (map[string]int, []Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	counts := map[string]int{}
	var out []Entry
	for _, e := range x.negs {
		if e.deleted {
			continue
		}
		if r := e.Verdict.UnownedReason(); r != "" {
			counts[r]++
			out = append(out, *e)
		}
	}
	return counts, out
}

// OwnedBy returns the entries of the NEGs of ours whose description names svc.
func (x *Index) OwnedBy(svc cache.ObjectName) map[neg.Ref]Entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[neg.Ref]Entry, len(x.owned[svc]))
	for ref := range x.owned[svc] {
		out[ref] = *x.negs[ref]
	}
	return out
}

// Owners returns every Service that owns at least one NEG, sorted.
func (x *Index) Owners() []cache.ObjectName {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make(map[cache.ObjectName]bool, len(x.owned))
	for k := range x.owned {
		out[k] = true
	}
	return sortedNames(out)
}

// sortedNames returns the keys of set sorted by their string form.
func sortedNames(set map[cache.ObjectName]bool) []cache.ObjectName {
	out := make([]cache.ObjectName, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// setLocked records n under ref, judged by the rule, keeping the claimed mark of a NEG we knew;
// local marks a change of ours (a new generation).
func (x *Index) setLocked(ref neg.Ref, n gce.NEG, local bool) {
	e := &Entry{NEG: n}
	if old := x.negs[ref]; old != nil {
		x.unownLocked(ref, old)
		e.Claimed = old.Claimed && !old.deleted
	}
	if local {
		x.gen++
		e.gen = x.gen
	}
	e.Description, e.Verdict = x.rule.Judge(n)
	e.Ours = x.rule.Ours(e.Verdict)
	x.negs[ref] = e
	x.ownLocked(ref, e)
}

func (x *Index) removeLocked(ref neg.Ref) {
	if e := x.negs[ref]; e != nil {
		x.unownLocked(ref, e)
	}
	delete(x.negs, ref)
}

func (x *Index) ownLocked(ref neg.Ref, e *Entry) {
	if !e.Ours {
		return
	}
	k := e.Service()
	if x.owned[k] == nil {
		x.owned[k] = map[neg.Ref]struct{}{}
	}
	x.owned[k][ref] = struct{}{}
}

func (x *Index) unownLocked(ref neg.Ref, e *Entry) {
	if !e.Ours {
		return
	}
	k := e.Service()
	delete(x.owned[k], ref)
	if len(x.owned[k]) == 0 {
		delete(x.owned, k)
	}
}
