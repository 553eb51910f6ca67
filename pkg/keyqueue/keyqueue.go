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
	"fmt"
	"slices"
	"strings"
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
	// Clock drives delays; default the real clock. The real and fake clocks of
	// k8s.io/utils/clock run delayed functions without a goroutine each (AfterFunc); others get
	// a goroutine per pending delay.
	Clock clock.WithTicker
	// MetricsProvider receives the queue's workqueue metrics; nil uses client-go's global one.
	MetricsProvider workqueue.MetricsProvider
}

// delayedClock is a clock that runs functions later.
type delayedClock interface {
	AfterFunc(d time.Duration, f func()) clock.Timer
}

// goroutineTimers runs delayed functions on a goroutine each, for clocks without AfterFunc.
type goroutineTimers struct{ clock.WithTicker }

func (g goroutineTimers) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &stoppableTimer{Timer: g.NewTimer(d), stop: make(chan struct{})}
	go func() {
		select {
		case <-t.C():
			f()
		case <-t.stop:
		}
	}()
	return t
}

// stoppableTimer ends its goroutine when stopped.
type stoppableTimer struct {
	clock.Timer
	once sync.Once
	stop chan struct{}
}

func (t *stoppableTimer) Stop() bool {
	t.once.Do(func() { close(t.stop) })
	return t.Timer.Stop()
}

// delayed is the one pending delayed re-sync of a key.
type delayed struct {
	at    time.Time
	timer clock.Timer
}

// Queue is a work queue with its workers. Create it with New, start the workers with Run.
type Queue struct {
	cfg Config
	q   workqueue.TypedRateLimitingInterface[cache.ObjectName]

	timers  delayedClock
	running atomic.Int64
	retries workqueue.CounterMetric
	mu      sync.Mutex
	// due holds, per key, the pending delayed re-sync: the earliest asked for. Delays are the
	// queue's own timers (not client-go's delaying queue), so what is due is known exactly.
	due map[cache.ObjectName]*delayed
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
	timers, ok := cfg.Clock.(delayedClock)
	if !ok {
		timers = goroutineTimers{cfg.Clock}
	}
	q := &Queue{cfg: cfg, timers: timers, due: map[cache.ObjectName]*delayed{}, retries: noRetries{},
		q: workqueue.NewTypedRateLimitingQueueWithConfig(cfg.RateLimiter, workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{
			Name: cfg.Name, Clock: cfg.Clock, MetricsProvider: cfg.MetricsProvider})}
	if cfg.MetricsProvider != nil && cfg.Name != "" {
		// Retries are scheduled here, not through the rate-limited queue: count them as it would.
		q.retries = cfg.MetricsProvider.NewRetriesMetric(cfg.Name)
	}
	return q
}

type noRetries struct{}

func (noRetries) Inc() {}

// Add queues key for a sync now.
func (q *Queue) Add(key cache.ObjectName) { q.q.Add(key) }

// AddAfter queues key for a sync after d (at once if d ≤ 0). A key has at most one delayed
// re-sync pending, the earliest asked for (as client-go's delaying queue): a later request is
// dropped, since the sync that comes first asks again for whatever it still needs.
func (q *Queue) AddAfter(key cache.ObjectName, d time.Duration) {
	if d <= 0 {
		q.q.Add(key)
		return
	}
	at := q.cfg.Clock.Now().Add(d)
	q.mu.Lock()
	defer q.mu.Unlock()
	if cur := q.due[key]; cur != nil {
		if !at.Before(cur.at) {
			return
		}
		cur.timer.Stop()
	}
	e := &delayed{at: at}
	e.timer = q.timers.AfterFunc(d, func() {
		q.mu.Lock()
		if q.due[key] == e {
			delete(q.due, key)
		}
		q.mu.Unlock()
		q.q.Add(key)
	})
	q.due[key] = e
}

// Len returns the number of keys queued (delayed ones not included).
func (q *Queue) Len() int { return q.q.Len() }

// NumRequeues returns the consecutive failures of key.
func (q *Queue) NumRequeues(key cache.ObjectName) int { return q.cfg.RateLimiter.NumRequeues(key) }

// ShutDown stops the queue: workers finish their current sync and exit; adds are ignored and
// pending delayed re-syncs dropped.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	for k, e := range q.due {
		e.timer.Stop()
		delete(q.due, k)
	}
	q.mu.Unlock()
	q.q.ShutDown()
}

// Idle reports whether nothing is queued, no sync is running and no delayed re-sync is due
// within horizon.
func (q *Queue) Idle(horizon time.Duration) bool {
	if q.q.Len() > 0 || q.running.Load() > 0 {
		return false
	}
	limit := q.cfg.Clock.Now().Add(horizon)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range q.due {
		if e.at.Before(limit) {
			return false
		}
	}
	return true
}

// State describes what the queue holds, for diagnostics: keys queued, syncs running, and the
// delayed re-syncs with how soon each is due.
func (q *Queue) State() string {
	now := q.cfg.Clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	due := make([]string, 0, len(q.due))
	for k, e := range q.due {
		due = append(due, fmt.Sprintf("%s in %s", k, e.at.Sub(now).Round(time.Millisecond)))
	}
	slices.Sort(due)
	return fmt.Sprintf("queued %d, running %d, due [%s]", q.q.Len(), q.running.Load(), strings.Join(due, ", "))
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
	q.ShutDown()
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

	ctx = klog.NewContext(ctx, klog.LoggerWithValues(klog.FromContext(ctx), q.cfg.LogKey, klog.KRef(key.Namespace, key.Name)))
	r := q.cfg.Sync(ctx, key)
	switch {
	case ctx.Err() != nil:
	case r.Err != nil:
		q.retries.Inc()
		q.AddAfter(key, q.cfg.RateLimiter.When(key))
	default:
		q.q.Forget(key)
		if r.RequeueAfter > 0 {
			q.AddAfter(key, r.RequeueAfter)
		}
	}
	return true
}
