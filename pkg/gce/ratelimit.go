package gce

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// RateLimit is a token bucket: QPS tokens per second, at most Burst at once.
type RateLimit struct {
	QPS   float64
	Burst int
}

// AIMD parameters of the adaptive limiter.
const (
	// minAdaptiveQPS is the floor of the slow-down (or the configured rate, if lower).
	minAdaptiveQPS = 0.5
	// recoverSteps is how many successes bring a halved rate back up by half of the
	// configured rate: each success adds configured/(2*recoverSteps).
	recoverSteps = 10
	// decreaseCooldown keeps one burst of concurrent 429s from halving the rate many times:
	// after a halving, further rate-limited results within this time are ignored.
	decreaseCooldown = time.Second
)

// adaptiveLimiter is a token bucket whose rate shrinks multiplicatively when GCE answers
// RateLimited and grows back additively on successes (AIMD), never above the configured rate
// and never below minAdaptiveQPS. All timing goes through clk, so tests can use a fake clock.
type adaptiveLimiter struct {
	clk       clock.Clock
	base      float64 // configured qps
	baseBurst int
	floor     float64

	mu           sync.Mutex
	cur          float64
	lastDecrease time.Time
	lim          *rate.Limiter
	// busy is true while a waiter holds the turn to book (the head); the others wait in queue
	// for theirs.
	busy  bool
	queue fairQueue
	// granted counts the tokens handed out (calls let through).
	granted atomic.Uint64
}

func newAdaptiveLimiter(rl RateLimit, clk clock.Clock) *adaptiveLimiter {
	if rl.Burst < 1 {
		rl.Burst = 1
	}
	floor := minAdaptiveQPS
	if rl.QPS > 0 && rl.QPS < floor {
		floor = rl.QPS
	}
	l := &adaptiveLimiter{clk: clk, base: rl.QPS, baseBurst: rl.Burst, floor: floor, cur: rl.QPS}
	limit := rate.Limit(rl.QPS)
	if rl.QPS <= 0 {
		limit = rate.Inf // QPS 0 disables the bucket
	}
	l.lim = rate.NewLimiter(limit, rl.Burst)
	return l
}

// maxReservation bounds how far ahead Wait books a token. A longer wait is taken in naps of
// this length, re-booking after each, so that when the rate recovers (or is restored) waiting
// calls get the faster rate instead of keeping a slot booked at the slow one for minutes.
const maxReservation = time.Second

// Wait blocks until a token is available or ctx is done. It returns how long it waited: 0 when
// a token was at hand without queueing.
//
// One waiter at a time, the head, books a token; the others wait in a fairQueue for their turn,
// ordered by the priority and tenant of their context (WithPriority, WithTenant): urgent
// before normal before background, tenants of a priority round-robin, each tenant's calls in
// arrival order. Without the queue, a waiter re-booking after a nap would go behind calls that
// arrived after it, and under a long backlog some calls would wait many times longer than
// others. The head books at most maxReservation ahead and otherwise naps (keeping its turn), so
// a recovered rate applies to it at once; once booked, it passes the turn on, so the calls of
// the next second book behind it in the queue's order. A waiter whose ctx ends while queued
// leaves the queue. A call arriving while the head naps waits for the head's token, whatever
// its priority: the head is served at most one token ahead of it.
func (l *adaptiveLimiter) Wait(ctx context.Context) (time.Duration, error) {
	start := l.clk.Now()
	w := &waiter{prio: priorityOf(ctx), tenant: tenantOf(ctx)}
	l.mu.Lock()
	if l.busy {
		w.turn = make(chan struct{})
		l.queue.push(w)
	} else {
		l.busy = true
	}
	l.mu.Unlock()
	if w.turn != nil {
		select {
		case <-w.turn:
		case <-ctx.Done():
			l.mu.Lock()
			if !l.queue.remove(w) { // our turn came at the same time: pass it on
				l.advanceLocked()
			}
			l.mu.Unlock()
			return l.clk.Since(start), ctx.Err()
		}
	}
	slept, err := l.book(ctx)
	if err == nil {
		l.granted.Add(1)
		if w.turn == nil && !slept {
			return 0, nil // not queued, token at hand
		}
	}
	return l.clk.Since(start), err
}

// book is Wait for the head: it books a token, passes the turn on, and sleeps until the token
// is due. slept tells whether it had to sleep.
func (l *adaptiveLimiter) book(ctx context.Context) (slept bool, err error) {
	advance := func() {
		l.mu.Lock()
		l.advanceLocked()
		l.mu.Unlock()
	}
	for {
		if err := ctx.Err(); err != nil {
			advance()
			return slept, err
		}
		now := l.clk.Now()
		l.mu.Lock()
		r := l.lim.ReserveN(now, 1)
		l.mu.Unlock()
		if !r.OK() {
			advance()
			return slept, fmt.Errorf("rate limiter cannot grant a token")
		}
		delay := r.DelayFrom(now)
		if delay <= 0 {
			advance()
			return slept, nil
		}
		// Context deadlines are wall-clock times, whatever clock drives the bucket.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			r.CancelAt(now)
			advance()
			return slept, fmt.Errorf("rate limiter wait of %v would exceed the deadline: %w", delay, context.DeadlineExceeded)
		}
		slept = true
		if delay > maxReservation {
			// Give the slot back and re-book after a nap, at the then-current rate.
			r.CancelAt(now)
			if err := l.sleep(ctx, min(delay-maxReservation, maxReservation)); err != nil {
				advance()
				return slept, err
			}
			continue
		}
		advance() // booked: the next in line may book behind us
		if err := l.sleep(ctx, delay); err != nil {
			r.CancelAt(l.clk.Now())
			return slept, err
		}
		return slept, nil
	}
}

// advanceLocked passes the turn to the next waiter of the queue, if any. Callers hold mu.
func (l *adaptiveLimiter) advanceLocked() {
	if w := l.queue.pop(); w != nil {
		close(w.turn)
		return
	}
	l.busy = false
}

// queued returns how many calls wait for their turn (the head not included).
func (l *adaptiveLimiter) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queue.len()
}

// short reports whether a call arriving now would wait: calls are queued, no token is at hand,
// or the rate is slowed below the configured one after rate-limit errors. A disabled bucket is
// never short.
func (l *adaptiveLimiter) short() bool {
	if l.base <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queue.len() > 0 || l.cur < l.base || l.lim.TokensAt(l.clk.Now()) < 1
}

// sleep waits d on the limiter's clock, or until ctx is done.
func (l *adaptiveLimiter) sleep(ctx context.Context, d time.Duration) error {
	t := l.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Observe feeds the class of a finished call into the AIMD loop: RateLimited halves the rate
// (at most once per decreaseCooldown), Success raises it by base/(2*recoverSteps). Other
// classes leave it alone.
func (l *adaptiveLimiter) Observe(c Class) {
	if l.base <= 0 {
		return
	}
	now := l.clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch c {
	case RateLimited:
		if !l.lastDecrease.IsZero() && now.Sub(l.lastDecrease) < decreaseCooldown {
			return
		}
		l.lastDecrease = now
		l.set(now, math.Max(l.floor, l.cur/2))
	case Success:
		if l.cur < l.base {
			l.set(now, math.Min(l.base, l.cur+l.base/(2*recoverSteps)))
		}
	}
}

// set changes the current rate and scales the burst with it. Callers hold mu.
func (l *adaptiveLimiter) set(now time.Time, qps float64) {
	l.cur = qps
	burst := int(math.Ceil(float64(l.baseBurst) * qps / l.base))
	if burst < 1 {
		burst = 1
	}
	l.lim.SetLimitAt(now, rate.Limit(qps))
	l.lim.SetBurstAt(now, burst)
}

// Granted returns how many tokens the limiter has handed out.
func (l *adaptiveLimiter) Granted() uint64 { return l.granted.Load() }

// ConfiguredQPS returns the configured rate (+Inf when the bucket is disabled).
func (l *adaptiveLimiter) ConfiguredQPS() float64 {
	if l.base <= 0 {
		return math.Inf(1)
	}
	return l.base
}

// QPS returns the current effective rate (the configured rate when not slowed down; +Inf when
// the bucket is disabled).
func (l *adaptiveLimiter) QPS() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.base <= 0 {
		return math.Inf(1)
	}
	return l.cur
}

// semaphore caps concurrent GCE calls; acquire is context-aware.
type semaphore chan struct{}

func newSemaphore(n int) semaphore { return make(semaphore, n) }

func (s semaphore) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s semaphore) release() { <-s }

// inUse returns how many slots are taken.
func (s semaphore) inUse() int { return len(s) }
