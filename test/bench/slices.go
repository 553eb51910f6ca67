package bench

import (
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// sliceTracker follows the EndpointSlices of every Service: the set of non-terminating endpoint
// IPs per Service. A listener (the churn's latency tracker, big-service's endpoint clock) is
// told about every change, with the time the informer delivered it.
type sliceTracker struct {
	mu       sync.Mutex
	bySvc    map[string]map[string]map[string]bool // service key → slice name → IP set
	listener func(svc string, ips map[string]bool, at time.Time)
}

func newSliceTracker() *sliceTracker {
	return &sliceTracker{bySvc: map[string]map[string]map[string]bool{}}
}

func (t *sliceTracker) update(obj any, deleted bool) {
	now := time.Now()
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = d.Obj, true
	}
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	svc := es.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return
	}
	key := es.Namespace + "/" + svc
	ips := map[string]bool{}
	if !deleted {
		for _, ep := range es.Endpoints {
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			for _, a := range ep.Addresses {
				ips[a] = true
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.bySvc[key]
	if m == nil {
		m = map[string]map[string]bool{}
		t.bySvc[key] = m
	}
	if deleted {
		delete(m, es.Name)
	} else {
		m[es.Name] = ips
	}
	if t.listener != nil {
		t.listener(key, t.unionLocked(key), now)
	}
}

func (t *sliceTracker) unionLocked(key string) map[string]bool {
	out := map[string]bool{}
	for _, ips := range t.bySvc[key] {
		for ip := range ips {
			out[ip] = true
		}
	}
	return out
}

// count returns how many distinct non-terminating IPs the Service's slices hold.
func (t *sliceTracker) count(key string) int { return len(t.ips(key)) }

// ips returns the distinct non-terminating IPs the Service's slices hold (a copy).
func (t *sliceTracker) ips(key string) map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unionLocked(key)
}

func (t *sliceTracker) setListener(fn func(svc string, ips map[string]bool, at time.Time)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.listener = fn
}
