package negbinding

import (
	"slices"
	"sync"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// claims decides which binding a zonal NEG belongs to when several name it. The rule:
//
//	a binding whose status records the NEG (it attached, or may have attached, endpoints)
//	keeps it until its status no longer does — whatever its spec says now; when several do
//	(two processes raced, see below), the oldest binding (creation time, then namespace/name)
//
//	otherwise the first binding this process accepted it for keeps it while its spec names it
//
//	otherwise the binding being synced takes it
//
// The registry closes the race between two bindings synced at once, before either status
// write reaches the informer cache: under one lock, a NEG is granted to one binding only. After
// a restart the statuses, read before the first sync, give the same answer. A binding that
// loses a NEG it had in its status (only possible after two leaders overlapped) drops it from
// its status without detaching anything: the winner manages the NEG.
type claims struct {
	mu    sync.Mutex
	owner map[neg.Ref]cache.ObjectName
}

func newClaims() *claims { return &claims{owner: map[neg.Ref]cache.ObjectName{}} }

// holder says what the cache knows of a binding's hold on a NEG: whether its status records
// it and whether its spec names it (a binding being deleted names nothing).
type holder struct {
	key      cache.ObjectName
	recorded bool
	named    bool
	// older orders bindings: creation time, then namespace/name.
	created int64
}

// decide returns the binding ref belongs to, given me (the binding being synced) and the other
// bindings of the cache that name or record it; and records the answer.
func (c *claims) decide(ref neg.Ref, me holder, others []holder) cache.ObjectName {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := append([]holder{me}, others...)
	var recorded []holder
	for _, h := range all {
		if h.recorded {
			recorded = append(recorded, h)
		}
	}
	if len(recorded) > 0 {
		slices.SortFunc(recorded, compareHolders)
		c.owner[ref] = recorded[0].key
		return recorded[0].key
	}
	if cur, ok := c.owner[ref]; ok {
		for _, h := range all {
			if h.key == cur && h.named {
				return cur
			}
		}
	}
	if !me.named {
		delete(c.owner, ref)
		return cache.ObjectName{}
	}
	c.owner[ref] = me.key
	return me.key
}

// release forgets the NEGs key holds, except keep, and returns them.
func (c *claims) release(key cache.ObjectName, keep map[neg.Ref]bool) []neg.Ref {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []neg.Ref
	for ref, k := range c.owner {
		if k == key && !keep[ref] {
			delete(c.owner, ref)
			out = append(out, ref)
		}
	}
	return out
}

func compareHolders(a, b holder) int {
	switch {
	case a.created < b.created:
		return -1
	case a.created > b.created:
		return 1
	case a.key.String() < b.key.String():
		return -1
	case a.key.String() > b.key.String():
		return 1
	}
	return 0
}
