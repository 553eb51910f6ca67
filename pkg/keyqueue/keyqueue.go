// Package keyqueue is the work loop the controller's three reconcilers (NEGs, backend services,
// readiness gates) share: a named, rate-limited client-go work queue of object keys, a number of
// workers that each take a key and run the reconciler's sync for it, and the retry rule —
// an error retries the key with the queue's per-key backoff, success forgets the backoff and
// optionally asks for another sync later. A key is synced by one worker at a time.
//
// It also knows what is scheduled: Idle reports whether nothing is queued, no sync is running
// and no delayed re-sync is due within a horizon, the quiescence barrier tests use before
// asserting that something did not happen.
package keyqueue

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Result is what one sync asks for.
type Result struct {
	// Err retries the key with the per-key backoff (Config.RateLimiter); nil forgets it.
	Err error
	// RequeueAfter, on success, syncs the key again after this long (0: only on events).
	RequeueAfter time.Duration
}

// Config is everything New needs.
type Config struct {
	// Name names the queue (workqueue metrics use it).
	Name string
	// Workers is the number of keys synced at once; default 1.
	Workers int
	// Sync reconciles one key. Required.
	Sync func(ctx context.Context, key cache.ObjectName) Result
	// LogKey is the name under which the key is added to the sync's logger ("service", "pod").
	LogKey string
	// RateLimiter is the per-key backoff; default client-go's controller rate limiter.
	RateLimiter workqueue.TypedRateLimiter[cache.ObjectName]
	// Clock drives delays; default the real clock.
	Clock clock.WithTicker
	// MetricsProvider receives the queue's workqueue metrics; nil uses client-go's global one.
	MetricsProvider workqueue.MetricsProvider
}

// Queue is a work queue with its workers. Create it with New, start the workers with Run.
type Queue struct {
	cfg Config
	q   workqueue.TypedRateLimitingInterface[cache.ObjectName]

	running atomic.Int64
	mu      sync.Mutex
	// due holds, per key, the earliest delayed re-sync not yet handed to a worker.
	due map[cache.ObjectName]time.Time
}

// New returns a Queue.
func New(cfg Config) *Queue {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.RateLimiter == nil {
		cfg.RateLimiter = workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName]()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.LogKey == "" {
		cfg.LogKey = "key"
	}
	return &Queue{cfg: cfg, due: map[cache.ObjectName]time.Time{},
		q: workqueue.NewTypedRateLimitingQueueWithConfig(cfg.RateLimiter, workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{
			Name: cfg.Name, Clock: cfg.Clock, MetricsProvider: cfg.MetricsProvider})}
}

// Add queues key for a sync now.
func (q *Queue) Add(key cache.ObjectName) { q.q.Add(key) }

// AddAfter queues key for a sync after d (at once if d ≤ 0).
func (q *Queue) AddAfter(key cache.ObjectName, d time.Duration) {
	if d <= 0 {
		q.q.Add(key)
		return
	}
	at := q.cfg.Clock.Now().Add(d)
	q.mu.Lock()
	if cur, ok := q.due[key]; !ok || at.Before(cur) {
		q.due[key] = at
	}
	q.mu.Unlock()
	q.q.AddAfter(key, d)
}

// Len returns the number of keys queued (delayed ones not included).
func (q *Queue) Len() int { return q.q.Len() }

// NumRequeues returns the consecutive failures of key.
func (q *Queue) NumRequeues(key cache.ObjectName) int { return q.cfg.RateLimiter.NumRequeues(key) }

// ShutDown stops the queue: workers finish their current sync and exit; adds are ignored.
func (q *Queue) ShutDown() { q.q.ShutDown() }

// Idle reports whether nothing is queued, no sync is running and no delayed re-sync is due
// within horizon.
func (q *Queue) Idle(horizon time.Duration) bool {
	if q.q.Len() > 0 || q.running.Load() > 0 {
		return false
	}
	limit := q.cfg.Clock.Now().Add(horizon)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, at := range q.due {
		if at.Before(limit) {
			return false
		}
	}
	return true
}

// Run runs the workers until ctx is done, then shuts the queue down and returns when every
// worker has finished.
func (q *Queue) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() { wait.UntilWithContext(ctx, q.work, time.Second) })
	}
	<-ctx.Done()
	q.q.ShutDown()
	wg.Wait()
}

func (q *Queue) work(ctx context.Context) {
	for q.processNext(ctx) {
	}
}

// processNext syncs one key and applies its Result.
func (q *Queue) processNext(ctx context.Context) bool {
	key, shutdown := q.q.Get()
	if shutdown {
		return false
	}
	defer q.q.Done(key)
	q.running.Add(1)
	defer q.running.Add(-1)
	q.mu.Lock()
	if at, ok := q.due[key]; ok && !at.After(q.cfg.Clock.Now()) {
		delete(q.due, key)
	}
	q.mu.Unlock()

	ctx = klog.NewContext(ctx, klog.LoggerWithValues(klog.FromContext(ctx), q.cfg.LogKey, klog.KRef(key.Namespace, key.Name)))
	r := q.cfg.Sync(ctx, key)
	switch {
	case ctx.Err() != nil:
	case r.Err != nil:
		q.AddAfter(key, q.cfg.RateLimiter.When(key))
	default:
		q.q.Forget(key)
		if r.RequeueAfter > 0 {
			q.AddAfter(key, r.RequeueAfter)
		}
	}
	return true
}
