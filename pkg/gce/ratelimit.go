package gce

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// RateLimit is a token bucket: QPS tokens per second, at most Burst at once.
type RateLimit struct {
	QPS   float64
	Burst int
}

// Method groups: each GCE call is charged to exactly one of these buckets (Config.RateLimits).
const (
	GroupZones         = "zones"         // zones.list
	GroupGetNEG        = "getNEG"        // networkEndpointGroups.get
	GroupInsertNEG     = "insertNEG"     // networkEndpointGroups.insert
	GroupDeleteNEG     = "deleteNEG"     // networkEndpointGroups.delete
	GroupListNEGs      = "listNEGs"      // networkEndpointGroups.aggregatedList (per page)
	GroupListEndpoints = "listEndpoints" // networkEndpointGroups.listNetworkEndpoints (per page)
	GroupAttach        = "attach"        // networkEndpointGroups.attachNetworkEndpoints
	GroupDetach        = "detach"        // networkEndpointGroups.detachNetworkEndpoints
	GroupOperations    = "operations"    // {zone,region,global}Operations.get
	GroupWait          = "wait"          // {zone,region,global}Operations.wait (long poll)
)

// DefaultRateLimits are the per-group budgets used for groups absent from Config.RateLimits.
// The NEG numbers follow kubernetes/ingress-gce's deployment (glbc-neg.yaml): attach/detach
// 15 qps burst 30, listNetworkEndpoints 30/45, NEG get 10/15, operations.get 5/10. Operation
// waits have their own budget (40/80): each wait is a long poll that returns when the
// operation is done (or after up to ~2 minutes), so they replace many gets, and every mutation
// needs at least one, so the budget is the sum of the mutation budgets (insert 5 + delete 5 +
// attach 15 + detach 15): a smaller one would become the bottleneck of a saturated churn
// (measured: with 20 qps, finished operations waited in the wait queue while new calls were
// started).
var DefaultRateLimits = map[string]RateLimit{
	GroupZones:         {QPS: 5, Burst: 10},
	GroupGetNEG:        {QPS: 10, Burst: 15},
	GroupInsertNEG:     {QPS: 5, Burst: 10},
	GroupDeleteNEG:     {QPS: 5, Burst: 10},
	GroupListNEGs:      {QPS: 5, Burst: 10},
	GroupListEndpoints: {QPS: 30, Burst: 45},
	GroupAttach:        {QPS: 15, Burst: 30},
	GroupDetach:        {QPS: 15, Burst: 30},
	GroupOperations:    {QPS: 5, Burst: 10},
	GroupWait:          {QPS: 40, Burst: 80},
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
	// The waiters' queue: issued counts tickets handed out, head is the ticket whose turn it
	// is to book; gone holds tickets that gave up before their turn, wake the waiting ones.
	issued, head int64
	gone         map[int64]bool
	wake         map[int64]chan struct{}
}

func newAdaptiveLimiter(rl RateLimit, clk clock.Clock) *adaptiveLimiter {
	if rl.Burst < 1 {
		rl.Burst = 1
	}
	floor := minAdaptiveQPS
	if rl.QPS > 0 && rl.QPS < floor {
		floor = rl.QPS
	}
	l := &adaptiveLimiter{clk: clk, base: rl.QPS, baseBurst: rl.Burst, floor: floor, cur: rl.QPS,
		gone: map[int64]bool{}, wake: map[int64]chan struct{}{}}
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

// Wait blocks until a token is available or ctx is done. It returns how long it waited.
//
// Waiters book tokens strictly in arrival order: each takes a ticket and books when every
// earlier ticket has booked or given up. Without the queue, a waiter re-booking after a nap
// would go behind calls that arrived after it, and under a long backlog some calls would wait
// many times longer than others. The head of the queue books at most maxReservation ahead and
// otherwise naps (keeping its place), so a recovered rate applies to it at once.
func (l *adaptiveLimiter) Wait(ctx context.Context) (time.Duration, error) {
	start := l.clk.Now()
	l.mu.Lock()
	ticket := l.issued
	l.issued++
	var turn chan struct{}
	if ticket != l.head {
		turn = make(chan struct{})
		l.wake[ticket] = turn
	}
	l.mu.Unlock()
	if turn != nil {
		select {
		case <-turn:
		case <-ctx.Done():
			l.mu.Lock()
			if ticket == l.head { // our turn came at the same time
				l.advanceLocked()
			} else {
				delete(l.wake, ticket)
				l.gone[ticket] = true
			}
			l.mu.Unlock()
			return l.clk.Since(start), ctx.Err()
		}
	}
	// Our turn: the next ticket waits until advance.
	advance := func() {
		l.mu.Lock()
		l.advanceLocked()
		l.mu.Unlock()
	}
	for {
		if err := ctx.Err(); err != nil {
			advance()
			return l.clk.Since(start), err
		}
		now := l.clk.Now()
		l.mu.Lock()
		r := l.lim.ReserveN(now, 1)
		l.mu.Unlock()
		if !r.OK() {
			advance()
			return 0, fmt.Errorf("rate limiter cannot grant a token")
		}
		delay := r.DelayFrom(now)
		if delay <= 0 {
			advance()
			return l.clk.Since(start), nil
		}
		// Context deadlines are wall-clock times, whatever clock drives the bucket.
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			r.CancelAt(now)
			advance()
			return l.clk.Since(start), fmt.Errorf("rate limiter wait of %v would exceed the deadline: %w", delay, context.DeadlineExceeded)
		}
		if delay > maxReservation {
			// Give the slot back and re-book after a nap, at the then-current rate.
			r.CancelAt(now)
			if err := l.sleep(ctx, min(delay-maxReservation, maxReservation)); err != nil {
				advance()
				return l.clk.Since(start), err
			}
			continue
		}
		advance() // booked: the next in line may book behind us
		if err := l.sleep(ctx, delay); err != nil {
			r.CancelAt(l.clk.Now())
			return l.clk.Since(start), err
		}
		return l.clk.Since(start), nil
	}
}

// advanceLocked passes the turn to the next ticket that has not given up. Callers hold mu.
func (l *adaptiveLimiter) advanceLocked() {
	l.head++
	for l.gone[l.head] {
		delete(l.gone, l.head)
		l.head++
	}
	if ch, ok := l.wake[l.head]; ok {
		delete(l.wake, l.head)
		close(ch)
	}
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
