package gce

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// TestFairQueueOrder: the queue's service order for arrivals given as "priority:tenant" (u, n,
// b for urgent, normal, background); "-" in the arrivals pops one waiter at that point.
func TestFairQueueOrder(t *testing.T) {
	cases := []struct {
		name     string
		arrivals []string
		want     []string
	}{
		{"one tenant is FIFO", []string{"n:a", "n:a", "n:a"}, []string{"n:a#0", "n:a#1", "n:a#2"}},
		{"tenants round-robin in order of joining", []string{"n:a", "n:a", "n:a", "n:b", "n:b", "n:c"},
			[]string{"n:a#0", "n:b#3", "n:c#5", "n:a#1", "n:b#4", "n:a#2"}},
		{"urgent first, background last", []string{"b:a", "n:a", "u:a", "n:b", "u:b", "b:b"},
			[]string{"u:a#2", "u:b#4", "n:a#1", "n:b#3", "b:a#0", "b:b#5"}},
		{"a tenant that empties rejoins at the end", []string{"n:a", "n:b", "-", "n:a", "n:c"},
			[]string{"n:a#0", "n:b#1", "n:a#3", "n:c#4"}},
		{"a served tenant goes behind the others", []string{"n:a", "n:a", "n:b", "-", "n:c", "n:b"},
			[]string{"n:a#0", "n:b#2", "n:a#1", "n:c#4", "n:b#5"}},
	}
	prios := map[string]Priority{"u": PriorityUrgent, "n": PriorityNormal, "b": PriorityBackground}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var q fairQueue
			names := map[*waiter]string{}
			var got []string
			pop := func() {
				w := q.pop()
				if w == nil {
					t.Fatal("pop of a non-empty queue returned nil")
				}
				got = append(got, names[w])
			}
			for i, a := range tc.arrivals {
				if a == "-" {
					pop()
					continue
				}
				p, tenant, _ := strings.Cut(a, ":")
				w := &waiter{prio: prios[p], tenant: tenant}
				names[w] = a + "#" + string(rune('0'+i))
				q.push(w)
			}
			for q.len() > 0 {
				pop()
			}
			if q.pop() != nil {
				t.Error("pop of an empty queue returned a waiter")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("order %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFairQueueRemove(t *testing.T) {
	var q fairQueue
	a0, a1 := &waiter{tenant: "a"}, &waiter{tenant: "a"}
	b0, c0 := &waiter{tenant: "b"}, &waiter{tenant: "c", prio: PriorityUrgent}
	for _, w := range []*waiter{a0, a1, b0, c0} {
		q.push(w)
	}
	if !q.remove(a0) || !q.remove(b0) || !q.remove(c0) || q.remove(c0) {
		t.Fatal("remove of queued waiters failed, or of a removed one succeeded")
	}
	if q.len() != 1 || q.pop() != a1 || q.pop() != nil {
		t.Error("after removals the queue should hold a1 only")
	}
	if len(q.levels[1].order) != 0 || len(q.levels[2].order) != 0 {
		t.Errorf("emptied tenants still in the round: %v %v", q.levels[1].order, q.levels[2].order)
	}
}

func TestPriorityAndTenantFromContext(t *testing.T) {
	ctx := context.Background()
	if priorityOf(ctx) != PriorityNormal || tenantOf(ctx) != "" {
		t.Error("untagged context is not normal priority, tenant \"\"")
	}
	ctx = WithTenant(WithPriority(ctx, PriorityUrgent), "ns/web")
	if priorityOf(ctx) != PriorityUrgent || tenantOf(ctx) != "ns/web" {
		t.Errorf("tags: %v %q", priorityOf(ctx), tenantOf(ctx))
	}
	if priorityOf(WithPriority(ctx, 7)) != PriorityUrgent || priorityOf(WithPriority(ctx, -7)) != PriorityBackground {
		t.Error("out-of-range priorities are not clamped")
	}
}

// hold makes l's turn taken, as by a head that has not booked yet: every Wait queues.
func hold(l *adaptiveLimiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.busy = true
}

// release passes the held turn to the queue.
func release(l *adaptiveLimiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.advanceLocked()
}

// queueWaiters starts one Wait per ctx, in order, each queued before the next starts, and
// returns the channel on which each reports its index when granted.
func queueWaiters(t *testing.T, l *adaptiveLimiter, ctxs []context.Context) <-chan int {
	t.Helper()
	done := make(chan int, len(ctxs))
	base := l.queued()
	for i, ctx := range ctxs {
		go func() {
			if _, err := l.Wait(ctx); err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			done <- i
		}()
		for deadline := time.Now().Add(5 * time.Second); l.queued() != base+i+1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waiter %d never queued", i)
			}
		}
	}
	return done
}

// grantOrder waits until the n released waiters have all booked (each sleeps on a timer: they
// fit in maxReservation), then steps clk one token interval at a time and returns the order in
// which they are granted: exactly one per step (burst 1, so the tokens are an interval apart).
func grantOrder(t *testing.T, clk *clocktesting.FakeClock, interval time.Duration, done <-chan int, n int) []int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); clk.Waiters() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d waiters booked", clk.Waiters(), n)
		}
	}
	var order []int
	for len(order) < n {
		clk.Step(interval)
		select {
		case i := <-done:
			order = append(order, i)
		case <-time.After(5 * time.Second):
			t.Fatalf("no grant after a step; granted so far %v", order)
		}
	}
	return order
}

func tagged(p Priority, tenant string) context.Context {
	return WithTenant(WithPriority(context.Background(), p), tenant)
}

// TestLimiterSharesBetweenTenants: a Service with many queued calls does not hold back the
// others: grants alternate between tenants, each tenant's calls in arrival order; urgent calls
// go before normal ones, background last.
func TestLimiterSharesBetweenTenants(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 10, Burst: 1}, clk)
	if _, err := l.Wait(context.Background()); err != nil { // drain the burst
		t.Fatal(err)
	}
	hold(l)
	n, u, b := PriorityNormal, PriorityUrgent, PriorityBackground
	done := queueWaiters(t, l, []context.Context{
		tagged(n, "ns/many"), tagged(n, "ns/many"), tagged(n, "ns/many"), tagged(n, "ns/many"), // 0-3
		tagged(b, "ns/gc"),                           // 4
		tagged(n, "ns/small"), tagged(n, "ns/small"), // 5, 6
		tagged(u, "ns/new"), tagged(u, "ns/new"), // 7, 8
		tagged(n, "ns/other"), // 9
	})
	release(l)
	got := grantOrder(t, clk, 100*time.Millisecond, done, 10)
	want := []int{7, 8, 0, 5, 9, 1, 6, 2, 3, 4}
	if !slices.Equal(got, want) {
		t.Errorf("grant order %v, want %v", got, want)
	}
	if l.Granted() != 11 {
		t.Errorf("granted %d, want 11", l.Granted())
	}
}

// TestLimiterCancelledWaiterLeaves: a waiter cancelled in the queue returns at once and the
// others are served as if it had never come.
func TestLimiterCancelledWaiterLeaves(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	l := newAdaptiveLimiter(RateLimit{QPS: 10, Burst: 1}, clk)
	if _, err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	hold(l)
	cctx, cancel := context.WithCancel(tagged(PriorityUrgent, "ns/gone"))
	cancelled := waitAsync(cctx, l)
	for deadline := time.Now().Add(5 * time.Second); l.queued() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued")
		}
	}
	done := queueWaiters(t, l, []context.Context{tagged(PriorityNormal, "a"), tagged(PriorityNormal, "b"), tagged(PriorityNormal, "a")})
	cancel()
	if r := <-cancelled; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v, want Canceled", r.err)
	}
	if q := l.queued(); q != 3 {
		t.Fatalf("%d queued after the cancellation, want 3", q)
	}
	release(l)
	if got := grantOrder(t, clk, 100*time.Millisecond, done, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("grant order %v, want [0 1 2]", got)
	}
	if l.Granted() != 4 {
		t.Errorf("granted %d, want 4 (the cancelled waiter got none)", l.Granted())
	}
}
