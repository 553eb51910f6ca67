package gce

import "context"

// Priority orders the calls waiting for the same rate-limit bucket: every waiting call of a
// higher priority is served before any of a lower one. The zero value is PriorityNormal.
type Priority int8

const (
	// PriorityBackground is for work nobody waits for: periodic verifies, re-lists, garbage
	// collection.
	PriorityBackground Priority = -1
	// PriorityNormal is the default: keeping existing NEGs in step with their endpoints.
	PriorityNormal Priority = 0
	// PriorityUrgent is for calls a Service is waiting for to serve at all: its first NEGs,
	// the first endpoints of an empty NEG.
	PriorityUrgent Priority = 1
)

func (p Priority) String() string {
	switch p {
	case PriorityBackground:
		return "background"
	case PriorityUrgent:
		return "urgent"
	}
	return "normal"
}

type ctxKey int

const (
	priorityKey ctxKey = iota
	tenantKey
)

// WithPriority returns a context whose GCE calls (and the operation waits of its mutations)
// wait for their rate-limit buckets at priority p.
func WithPriority(ctx context.Context, p Priority) context.Context {
	return context.WithValue(ctx, priorityKey, p)
}

// WithTenant returns a context whose GCE calls are accounted to tenant (e.g. the Service key
// "namespace/name"): within a priority, the buckets serve waiting tenants round-robin, one call
// each in turn, and each tenant's calls in arrival order. Calls without a tenant share the
// tenant "".
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey, tenant)
}

// priorityOf returns the priority set by WithPriority (PriorityNormal by default; values out of
// range are clamped).
func priorityOf(ctx context.Context) Priority {
	p, _ := ctx.Value(priorityKey).(Priority)
	return max(PriorityBackground, min(PriorityUrgent, p))
}

// tenantOf returns the tenant set by WithTenant ("" by default).
func tenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey).(string)
	return t
}

// waiter is one call queued for a bucket. turn is closed when it becomes the bucket's head.
type waiter struct {
	prio   Priority
	tenant string
	turn   chan struct{}
}

// fairQueue orders the waiters of one bucket: highest priority first; within a priority,
// tenants round-robin (each tenant with waiters gets one grant per round, in the order the
// tenants joined the round); within a tenant, arrival order. It is not safe for concurrent use
// (the limiter's mutex guards it).
type fairQueue struct {
	levels [3]queueLevel // index int(prio)+1: background, normal, urgent
	n      int
}

// queueLevel holds the waiters of one priority.
type queueLevel struct {
	// order lists the tenants with waiters, next to be served first.
	order []string
	fifo  map[string][]*waiter
}

func (q *fairQueue) len() int { return q.n }

// push queues w behind the waiters of its tenant; a tenant without waiters joins the end of
// its priority's round.
func (q *fairQueue) push(w *waiter) {
	lv := &q.levels[int(w.prio)+1]
	if lv.fifo == nil {
		lv.fifo = map[string][]*waiter{}
	}
	if len(lv.fifo[w.tenant]) == 0 {
		lv.order = append(lv.order, w.tenant)
	}
	lv.fifo[w.tenant] = append(lv.fifo[w.tenant], w)
	q.n++
}

// pop removes and returns the waiter to serve next, nil if none: the first waiter of the first
// tenant of the highest non-empty priority; that tenant then goes to the end of the round if it
// has more waiters.
func (q *fairQueue) pop() *waiter {
	for i := len(q.levels) - 1; i >= 0; i-- {
		lv := &q.levels[i]
		if len(lv.order) == 0 {
			continue
		}
		tenant := lv.order[0]
		lv.order = lv.order[1:]
		ws := lv.fifo[tenant]
		w := ws[0]
		if len(ws) == 1 {
			delete(lv.fifo, tenant)
		} else {
			lv.fifo[tenant] = ws[1:]
			lv.order = append(lv.order, tenant)
		}
		q.n--
		return w
	}
	return nil
}

// remove takes w out of the queue; false if it was not queued (already popped).
func (q *fairQueue) remove(w *waiter) bool {
	lv := &q.levels[int(w.prio)+1]
	ws := lv.fifo[w.tenant]
	for i, x := range ws {
		if x != w {
			continue
		}
		if len(ws) == 1 {
			delete(lv.fifo, w.tenant)
			for j, t := range lv.order {
				if t == w.tenant {
					lv.order = append(lv.order[:j:j], lv.order[j+1:]...)
					break
				}
			}
		} else {
			lv.fifo[w.tenant] = append(ws[:i:i], ws[i+1:]...)
		}
		q.n--
		return true
	}
	return false
}
