package keyqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
)

// TestRetryAndRequeue: an error retries the key after the rate limiter's delay (exactly, on a
// fake clock), success forgets the failures and honours RequeueAfter; Idle sees the delayed
// re-syncs within its horizon and not beyond.
func TestRetryAndRequeue(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	key := cache.ObjectName{Namespace: "ns", Name: "svc"}
	var mu sync.Mutex
	results := []Result{{Err: errors.New("boom")}, {Err: errors.New("boom")}, {RequeueAfter: time.Minute}, {}}
	synced := make(chan int, 10)
	calls := 0
	q := New(Config{Name: "test", Clock: clk,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](time.Second, time.Hour),
		Sync: func(_ context.Context, k cache.ObjectName) Result {
			mu.Lock()
			defer mu.Unlock()
			r := results[calls]
			calls++
			synced <- calls
			return r
		}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)

	// settle waits for sync n and for the worker to finish with it.
	settle := func(n int) {
		t.Helper()
		if got := <-synced; got != n {
			t.Fatalf("sync %d, want %d", got, n)
		}
		for q.running.Load() > 0 {
			time.Sleep(time.Millisecond) // the worker applies the result; poll, not an assertion
		}
	}
	q.Add(key)
	settle(1)
	if q.Idle(time.Second+time.Millisecond) || !q.Idle(time.Second) {
		t.Fatalf("after the first failure: idle within 1s+1ms = %v, within 1s = %v; want a retry due at 1s",
			q.Idle(time.Second+time.Millisecond), q.Idle(time.Second))
	}
	clk.Step(time.Second)
	settle(2)
	if q.NumRequeues(key) != 2 || q.Idle(2*time.Second+time.Millisecond) {
		t.Fatalf("after the second failure: %d requeues, want 2 and a retry due at 2s", q.NumRequeues(key))
	}
	clk.Step(2 * time.Second)
	settle(3)
	if q.NumRequeues(key) != 0 {
		t.Errorf("success did not forget the failures")
	}
	if !q.Idle(time.Minute) || q.Idle(time.Minute+time.Millisecond) {
		t.Errorf("RequeueAfter 1m not seen as due in a minute")
	}
	clk.Step(time.Minute)
	settle(4)
	if !q.Idle(time.Hour) {
		t.Errorf("not idle after the last sync")
	}
}

// TestDelayedResyncsAreExact: a key has one pending delayed re-sync, the earliest asked for; a
// sync in between (an event) does not consume it, and once it fires nothing is left due. (A
// queue that tracked due times beside client-go's delaying queue could drop the later request
// while still expecting it, and never be idle.)
func TestDelayedResyncsAreExact(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	key := cache.ObjectName{Namespace: "ns", Name: "svc"}
	synced := make(chan struct{}, 10)
	q := New(Config{Name: "test", Clock: clk, Sync: func(context.Context, cache.ObjectName) Result {
		synced <- struct{}{}
		return Result{}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	settle := func() {
		t.Helper()
		<-synced
		for q.running.Load() > 0 || q.Len() > 0 {
			time.Sleep(time.Millisecond) // the worker finishing; poll, not an assertion
		}
	}
	q.AddAfter(key, time.Second)
	clk.Step(500 * time.Millisecond)
	q.Add(key) // an event
	settle()
	q.AddAfter(key, 2*time.Second) // later than the pending one: dropped
	if q.Idle(500*time.Millisecond+time.Millisecond) || !q.Idle(500*time.Millisecond) {
		t.Fatalf("pending re-sync not due in exactly 500 ms: %s", q.State())
	}
	clk.Step(500 * time.Millisecond)
	settle()
	if !q.Idle(time.Hour) {
		t.Fatalf("not idle after the re-sync fired: %s", q.State())
	}
}
