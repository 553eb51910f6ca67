package gce

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// waitAsync runs l.Wait in a goroutine and returns a channel with its result.
func waitAsync(ctx context.Context, l *adaptiveLimiter) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		d, err := l.Wait(ctx)
		ch <- waitResult{d, err}
	}()
	return ch
}

type waitResult struct {
	d   time.Duration
	err error
}

// untilWaiting blocks until the fake clock has a timer waiting.
func untilWaiting(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("limiter never waited on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAdaptiveLimiterWait(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 10, Burst: 1}, clk)
	ctx := context.Background()
	if d, err := l.Wait(ctx); d != 0 || err != nil {
		t.Fatalf("first Wait = %v, %v; want immediate", d, err)
	}
	ch := waitAsync(ctx, l)
	untilWaiting(t, clk)
	clk.Step(100 * time.Millisecond)
	r := <-ch
	if r.err != nil || r.d != 100*time.Millisecond {
		t.Fatalf("second Wait = %v, %v; want 100ms", r.d, r.err)
	}

	// A deadline shorter than the needed delay fails at once, without a timer.
	slow := newAdaptiveLimiter(RateLimit{QPS: 0.01, Burst: 1}, clk)
	if _, err := slow.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := slow.Wait(dctx); !errors.Is(err, context.DeadlineExceeded) || dctx.Err() != nil {
		t.Fatalf("Wait with short deadline = %v, want DeadlineExceeded before the deadline", err)
	}

	// Cancellation while waiting returns the context error.
	cctx, ccancel := context.WithCancel(ctx)
	ch = waitAsync(cctx, l)
	untilWaiting(t, clk)
	ccancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("canceled Wait = %v, want Canceled", r.err)
	}
}

func TestAdaptiveLimiterAIMD(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 10, Burst: 20}, clk)
	if got := l.QPS(); got != 10 {
		t.Fatalf("initial QPS = %v", got)
	}
	l.Observe(RateLimited)
	if got := l.QPS(); got != 5 {
		t.Fatalf("after one 429: %v, want 5", got)
	}
	l.Observe(RateLimited) // within the cooldown: ignored
	if got := l.QPS(); got != 5 {
		t.Fatalf("after a second 429 in the cooldown: %v, want 5", got)
	}
	for range 10 {
		clk.Step(decreaseCooldown)
		l.Observe(RateLimited)
	}
	if got := l.QPS(); got != minAdaptiveQPS {
		t.Fatalf("after many 429s: %v, want floor %v", got, minAdaptiveQPS)
	}
	if got := l.lim.Burst(); got != 1 {
		t.Errorf("burst at floor = %d, want 1", got)
	}
	l.Observe(Server) // neither up nor down
	l.Observe(NotFound)
	if got := l.QPS(); got != minAdaptiveQPS {
		t.Fatalf("other classes changed the rate: %v", got)
	}
	l.Observe(Success)
	if got := l.QPS(); math.Abs(got-(minAdaptiveQPS+0.5)) > 1e-9 {
		t.Fatalf("after one success: %v, want %v", got, minAdaptiveQPS+0.5)
	}
	for range 100 {
		l.Observe(Success)
	}
	if got := l.QPS(); got != 10 {
		t.Fatalf("after many successes: %v, want 10", got)
	}
	if got := l.lim.Burst(); got != 20 {
		t.Errorf("burst restored = %d, want 20", got)
	}
}

func TestAdaptiveLimiterLowAndDisabled(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	low := newAdaptiveLimiter(RateLimit{QPS: 0.2, Burst: 1}, clk)
	low.Observe(RateLimited)
	if got := low.QPS(); got != 0.2 {
		t.Errorf("limiter below the floor slowed to %v, want 0.2", got)
	}
	off := newAdaptiveLimiter(RateLimit{}, clk)
	for range 100 {
		if d, err := off.Wait(context.Background()); d != 0 || err != nil {
			t.Fatalf("disabled limiter waited: %v, %v", d, err)
		}
	}
	off.Observe(RateLimited)
	if !math.IsInf(off.QPS(), 1) {
		t.Errorf("disabled limiter QPS = %v, want +Inf", off.QPS())
	}
}

func TestSemaphore(t *testing.T) {
	s := newSemaphore(2)
	ctx := context.Background()
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if s.inUse() != 2 {
		t.Fatalf("inUse = %d", s.inUse())
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := s.acquire(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire on a full semaphore = %v", err)
	}
	s.release()
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
}

// A call waiting behind a slowed-down bucket gets the restored rate once it recovers, instead
// of keeping the slot it would have booked at the slow rate.
func TestAdaptiveLimiterWaitersGetRecoveredRate(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 10, Burst: 1}, clk)
	ctx := context.Background()
	l.mu.Lock()
	l.set(clk.Now(), 0.1) // slowed right down: the next token is 10 s away
	l.mu.Unlock()
	if _, err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	ch := waitAsync(ctx, l)
	untilWaiting(t, clk)
	l.mu.Lock()
	l.set(clk.Now(), 10) // recovered
	l.mu.Unlock()
	for i := 0; i < 3; i++ {
		select {
		case r := <-ch:
			if r.err != nil || r.d > 2*time.Second {
				t.Fatalf("Wait = %v, %v; want done within about a second of the recovery", r.d, r.err)
			}
			return
		default:
		}
		untilWaiting(t, clk)
		clk.Step(maxReservation)
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-ch:
		if r.err != nil || r.d > 3*time.Second {
			t.Fatalf("Wait = %v, %v; want done within a few seconds of the recovery, not 10 s", r.d, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter still stuck at the slow rate after the recovery")
	}
}

// TestAdaptiveLimiterServesWaitersInOrder: with a backlog far longer than maxReservation,
// waiters get their tokens in arrival order (re-booking after naps does not let late arrivals
// overtake).
func TestAdaptiveLimiterServesWaitersInOrder(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 10, Burst: 1}, clk)
	ctx := context.Background()
	if _, err := l.Wait(ctx); err != nil { // drain the burst
		t.Fatal(err)
	}
	const n = 40 // 4 s of tokens: most waiters start out beyond the booking window
	hold(l)      // every waiter queues: the order is the queue's, not the goroutines'
	done := make(chan int, n)
	for i := range n {
		go func() {
			if _, err := l.Wait(ctx); err != nil {
				t.Error(err)
			}
			done <- i
		}()
		// Let waiter i queue before the next one starts.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			if l.queued() == i+1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiter %d never queued", i)
			}
		}
	}
	release(l)
	var order []int
	for deadline := time.Now().Add(20 * time.Second); len(order) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d waiters done: %v", len(order), n, order)
		}
		select {
		case i := <-done:
			order = append(order, i)
			continue
		case <-time.After(5 * time.Millisecond):
		}
		if clk.HasWaiters() {
			clk.Step(50 * time.Millisecond)
		}
	}
	for k, i := range order {
		if i != k {
			t.Fatalf("waiters finished in order %v; want 0..%d", order, n-1)
		}
	}
}

// TestAdaptiveLimiterQueuedWaiterGivesUp: a waiter cancelled while queued leaves the queue
// without blocking the ones behind it.
func TestAdaptiveLimiterQueuedWaiterGivesUp(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 0.1, Burst: 1}, clk) // a token every 10 s
	ctx := context.Background()
	if _, err := l.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	first := waitAsync(ctx, l) // the head: naps until its token is within maxReservation
	untilWaiting(t, clk)
	cctx, cancel := context.WithCancel(ctx)
	second := waitAsync(cctx, l)
	third := waitAsync(ctx, l)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if l.queued() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("waiters 2 and 3 never queued")
		}
	}
	cancel()
	if r := <-second; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled queued waiter: %v, want Canceled", r.err)
	}
	for _, ch := range []<-chan waitResult{first, third} {
		for deadline := time.Now().Add(10 * time.Second); ; {
			select {
			case r := <-ch:
				if r.err != nil {
					t.Fatal(r.err)
				}
			case <-time.After(5 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("a waiter behind the cancelled one was never served")
				}
				if clk.HasWaiters() {
					clk.Step(500 * time.Millisecond)
				}
				continue
			}
			break
		}
	}
}

// TestAdaptiveLimiterShort: a bucket is short when a call arriving now would wait — no token at
// hand, or the rate slowed after rate-limit errors — and not once tokens are back.
func TestAdaptiveLimiterShort(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 1, Burst: 2}, clk)
	steps := []struct {
		do        func()
		wantShort bool
	}{
		{func() {}, false},
		{func() { _, _ = l.Wait(context.Background()) }, false}, // one token left
		{func() { _, _ = l.Wait(context.Background()) }, true},  // burst spent
		{func() { clk.Step(time.Second) }, false},               // a token is back
		{func() { l.Observe(RateLimited) }, true},               // slowed
		{func() {
			for i := 0; i < 2*recoverSteps; i++ {
				l.Observe(Success)
			}
		}, false}, // recovered
	}
	for i, s := range steps {
		s.do()
		if got := l.short(); got != s.wantShort {
			t.Errorf("step %d: short = %v, want %v", i, got, s.wantShort)
		}
	}
	if (newAdaptiveLimiter(RateLimit{}, clk)).short() {
		t.Error("a disabled bucket is short")
	}
}
