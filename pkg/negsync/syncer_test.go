package negsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

var (
	ref   = neg.Ref{Zone: "zone-a", Name: "k8s1-neg"}
	owner = cache.ObjectName{Namespace: "default", Name: "web"}
	t0    = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
)

func ep(i int) neg.Endpoint {
	return neg.Endpoint{Instance: "node", IP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Port: 8080}
}

func eps(from, to int) neg.EndpointSet {
	s := neg.NewEndpointSet()
	for i := from; i < to; i++ {
		s.Insert(ep(i))
	}
	return s
}

// harness is a Syncer over a fakeCloud with a fake clock, no jitter, and a record of Done
// reports.
type harness struct {
	t     *testing.T
	cloud *fakeCloud
	clk   *clocktesting.FakeClock
	s     *Syncer
	short bool

	mu   sync.Mutex
	done []Done
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, cloud: newFakeCloud(), clk: clocktesting.NewFakeClock(t0)}
	h.cloud.put(ref)
	cfg := Config{Cloud: h.cloud, Clock: h.clk, Jitter: func(d time.Duration) time.Duration { return d },
		Backoff:      backoff.Policy{Base: time.Second, Max: time.Minute, Later: 15 * time.Second},
		CallInterval: time.Second, Quiet: 100 * time.Millisecond, VerifyPeriod: time.Hour, InvalidEndpointRetry: 10 * time.Minute,
		BudgetShort: func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.short
		},
		OnDone: func(d Done) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.done = append(h.done, d)
		}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h
}

// known lists the NEG (its endpoints become known).
func (h *harness) known() {
	h.t.Helper()
	if _, err := h.s.Refresh(context.Background(), ref, owner); err != nil {
		h.t.Fatalf("Refresh: %v", err)
	}
}

func (h *harness) apply(desired neg.EndpointSet) Outcome {
	return h.s.Apply(context.Background(), Request{Ref: ref, Owner: owner, Desired: desired})
}

// dones returns the Done reports so far.
func (h *harness) dones() []Done {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Done(nil), h.done...)
}

func (h *harness) setShort(v bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.short = v
}

// TestApplyCallsAtTheMinimum: N endpoints changed together cost ceil(N/500) calls, one Done
// per direction, and a second Apply with nothing new costs nothing.
func TestApplyCallsAtTheMinimum(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after neg.EndpointSet
		attach        int
		detach        int
	}{
		{"one endpoint", neg.NewEndpointSet(), eps(0, 1), 1, 0},
		{"500 in one call", neg.NewEndpointSet(), eps(0, 500), 1, 0},
		{"1,200 in three calls", neg.NewEndpointSet(), eps(0, 1200), 3, 0},
		{"replace 600 by 600", eps(0, 600), eps(600, 1200), 2, 2},
		{"nothing to do", eps(0, 10), eps(0, 10), 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.cloud.put(ref, tc.before.Sorted()...)
			h.known()
			out := h.apply(tc.after)
			h.s.Wait()
			if out.Started != tc.attach+tc.detach || h.cloud.count("attach") != tc.attach || h.cloud.count("detach") != tc.detach {
				t.Errorf("started %d; %d attach and %d detach calls, want %d and %d",
					out.Started, h.cloud.count("attach"), h.cloud.count("detach"), tc.attach, tc.detach)
			}
			if !h.cloud.set(ref).Equal(tc.after) {
				t.Errorf("NEG holds %d endpoints, want %d", h.cloud.set(ref).Len(), tc.after.Len())
			}
			wantDone := min(tc.attach, 1) + min(tc.detach, 1)
			if got := len(h.dones()); got != wantDone {
				t.Errorf("%d Done reports, want %d (one per direction)", got, wantDone)
			}
			if again := h.apply(tc.after); again.Started != 0 {
				t.Errorf("second Apply started %d calls, want 0", again.Started)
			}
			if p := h.s.Progress(ref, tc.after); !p.Settled() {
				t.Errorf("Progress = %+v, want settled", p)
			}
		})
	}
}

// TestApplyUnknownPlansNothing: without a listing nothing is planned.
func TestApplyUnknownPlansNothing(t *testing.T) {
	h := newHarness(t, nil)
	if out := h.apply(eps(0, 3)); out.Known || out.Started != 0 {
		t.Errorf("Apply on an unknown NEG = %+v, want nothing", out)
	}
}

// TestHeldBehindInFlight: while an attach is in flight, new endpoints wait (no second call, no
// duplicate); when it finishes, one call takes everything that arrived meanwhile.
func TestHeldBehindInFlight(t *testing.T) {
	h := newHarness(t, nil)
	h.known()
	h.cloud.gate = make(chan struct{})
	if out := h.apply(eps(0, 1)); out.Started != 1 {
		t.Fatalf("first Apply started %d calls, want 1", out.Started)
	}
	for n := 2; n <= 5; n++ {
		out := h.apply(eps(0, n))
		if out.Started != 0 || !out.ResumeAt.IsZero() {
			t.Fatalf("Apply with %d endpoints during the call = %+v, want held with no resume time", n, out)
		}
	}
	if p := h.s.Progress(ref, eps(0, 5)); p.InFlight != 1 {
		t.Errorf("in flight = %d, want 1 (held endpoints are not in flight)", p.InFlight)
	}
	close(h.cloud.gate)
	h.s.Wait()
	if d := h.dones(); len(d) != 1 || d[0].Succeeded != 1 || d[0].Op != plan.Attach || d[0].Owner != owner {
		t.Fatalf("Done reports %+v, want one attach of 1", d)
	}
	if out := h.apply(eps(0, 5)); out.Started != 1 {
		t.Fatalf("Apply after the call started %d calls, want 1", out.Started)
	}
	h.s.Wait()
	if got := h.cloud.count("attach"); got != 2 {
		t.Errorf("%d attach calls, want 2", got)
	}
	if !h.cloud.set(ref).Equal(eps(0, 5)) {
		t.Errorf("NEG holds %v", h.cloud.set(ref).Sorted())
	}
}

// TestPacing: a NEG gets its burst of two calls at once; then, while changes keep coming, they
// wait for the pacer (one call per CallInterval) — but once they have been quiet for Quiet
// they go out without waiting for it. While the budget is short the pacer is strict. Every
// resume time is exact.
func TestPacing(t *testing.T) {
	h := newHarness(t, nil)
	h.known()
	step := func(d time.Duration, n int, wantStarted int, wantResume time.Duration) {
		t.Helper()
		h.clk.Step(d)
		out := h.apply(eps(0, n))
		h.s.Wait()
		var resume time.Duration
		if !out.ResumeAt.IsZero() {
			resume = out.ResumeAt.Sub(h.clk.Now())
		}
		if out.Started != wantStarted || resume != wantResume {
			t.Fatalf("at +%s with %d endpoints: started %d, resume in %s; want %d, %s",
				h.clk.Since(t0), n, out.Started, resume, wantStarted, wantResume)
		}
	}
	step(0, 1, 1, 0)                                      // a quiet NEG: at once
	step(0, 2, 1, 0)                                      // the burst's second call
	step(0, 3, 0, 100*time.Millisecond)                   // burst spent: held until quiet
	step(50*time.Millisecond, 4, 0, 100*time.Millisecond) // changed again: quiet restarts
	step(99*time.Millisecond, 4, 0, time.Millisecond)     // 1 ms early
	step(time.Millisecond, 4, 1, 0)                       // quiet for 100 ms: sent ahead of the pacer
	if got := h.cloud.count("attach"); got != 3 {
		t.Fatalf("%d attach calls, want 3", got)
	}
	// A steady stream (a change every 50 ms) gets one call per CallInterval.
	h.clk.Step(10 * time.Second) // pacer full again
	calls := h.cloud.count("attach")
	n := 4
	for i := 0; i < 40; i++ { // 2 s
		n++
		h.clk.Step(50 * time.Millisecond)
		h.apply(eps(0, n))
		h.s.Wait()
	}
	if got := h.cloud.count("attach") - calls; got != 3 {
		t.Errorf("a 2 s stream of 40 changes made %d calls, want 3 (the burst of 2, then one per second)", got)
	}
	// Budget short: quiet changes wait for the pacer.
	h.setShort(true)
	h.clk.Step(10 * time.Second)
	step(0, n+1, 1, 0)
	step(0, n+2, 1, 0)
	step(0, n+3, 0, time.Second)
	step(500*time.Millisecond, n+3, 0, 500*time.Millisecond) // quiet, but the budget is short
	step(500*time.Millisecond, n+3, 1, 0)
}

// TestInvalidEndpointsAreIsolated: a batch GCE rejects as invalid is split in halves to apply
// the valid endpoints; the invalid one is left out until InvalidEndpointRetry passes.
func TestInvalidEndpointsAreIsolated(t *testing.T) {
	h := newHarness(t, nil)
	h.known()
	h.cloud.invalid.Insert(ep(5))
	h.apply(eps(0, 8))
	h.s.Wait()
	// 8 → 4+4 → (2+2) → (1+1): 1 + 2 + 2 + 2 calls.
	if got := h.cloud.count("attach"); got != 7 {
		t.Errorf("%d attach calls, want 7", got)
	}
	want := eps(0, 8)
	delete(want, ep(5))
	if !h.cloud.set(ref).Equal(want) {
		t.Errorf("NEG holds %v, want all but %v", h.cloud.set(ref).Sorted(), ep(5))
	}
	d := h.dones()
	if len(d) != 1 || len(d[0].Invalid) != 1 || d[0].Invalid[0] != ep(5) || d[0].Succeeded != 7 || d[0].InvalidErr == nil || d[0].Err != nil {
		t.Fatalf("Done = %+v, want 7 succeeded and %v invalid", d, ep(5))
	}
	if p := h.s.Progress(ref, eps(0, 8)); !p.Settled() {
		t.Errorf("Progress = %+v, want settled (the invalid endpoint is left out)", p)
	}
	if out := h.apply(eps(0, 8)); out.Started != 0 {
		t.Errorf("invalid endpoint retried at once: %d calls", out.Started)
	}
	h.clk.Step(10 * time.Minute)
	if out := h.apply(eps(0, 8)); out.Started != 1 {
		t.Errorf("after InvalidEndpointRetry: %d calls, want 1", out.Started)
	}
	h.s.Wait()
}

// TestIdleNEGHoldsNoCallMaps: the in-flight and invalid sets of a NEG are dropped once empty (a
// Go map keeps its storage after deletes), and made again when needed.
func TestIdleNEGHoldsNoCallMaps(t *testing.T) {
	h := newHarness(t, nil)
	h.known()
	h.cloud.invalid.Insert(ep(5))
	maps := func() (inFlight, invalid bool) {
		st := h.s.lookup(ref)
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.inFlight != nil, st.invalid != nil
	}
	h.apply(eps(0, 8))
	h.s.Wait()
	if inFlight, invalid := maps(); inFlight || !invalid {
		t.Errorf("after the calls: in-flight map %v (want none), invalid map %v (want one)", inFlight, invalid)
	}
	h.clk.Step(10 * time.Minute)
	h.cloud.invalid = neg.NewEndpointSet()
	if out := h.apply(eps(0, 8)); out.Started != 1 {
		t.Fatalf("after InvalidEndpointRetry: %d calls, want 1", out.Started)
	}
	h.s.Wait()
	if inFlight, invalid := maps(); inFlight || invalid {
		t.Errorf("idle NEG: in-flight map %v, invalid map %v; want neither", inFlight, invalid)
	}
	if !h.cloud.set(ref).Equal(eps(0, 8)) {
		t.Errorf("NEG holds %v, want every endpoint", h.cloud.set(ref).Sorted())
	}
}

// TestSplittingIsBounded: a batch of many endpoints all rejected stops splitting after
// maxSplitCalls calls; the rest is treated as invalid.
func TestSplittingIsBounded(t *testing.T) {
	h := newHarness(t, nil)
	h.known()
	for e := range eps(0, 200) {
		h.cloud.invalid.Insert(e)
	}
	h.apply(eps(0, 200))
	h.s.Wait()
	if got := h.cloud.count("attach"); got != defaultMaxSplitCalls {
		t.Errorf("%d attach calls, want %d", got, defaultMaxSplitCalls)
	}
	if d := h.dones(); len(d) != 1 || len(d[0].Invalid) != 200 {
		t.Errorf("Done = %+v, want 200 invalid", d)
	}
}

// TestFailureBacksOff: a failed call makes the endpoints unknown and backs the NEG off with
// the policy's delays; no call is made before the retry time; a listing then repairs.
func TestFailureBacksOff(t *testing.T) {
	h := newHarness(t, nil)
	h.known()
	h.cloud.failNext(errServer)
	h.apply(eps(0, 3))
	h.s.Wait()
	d := h.dones()
	if len(d) != 1 || d[0].Err == nil || !d[0].RetryAt.Equal(t0.Add(time.Second)) || d[0].Failed != 3 {
		t.Fatalf("Done = %+v, want a failure retried at t0+1s", d)
	}
	if at := h.s.RetryAt(ref); !at.Equal(t0.Add(time.Second)) {
		t.Errorf("RetryAt = %v", at)
	}
	if out := h.apply(eps(0, 3)); out.Started != 0 || out.Known {
		t.Errorf("after a failure: %+v, want unknown and no call", out)
	}
	// The second failure in a row doubles the delay.
	h.clk.Step(time.Second)
	h.known()
	h.cloud.failNext(errServer)
	h.apply(eps(0, 3))
	h.s.Wait()
	if at := h.s.RetryAt(ref); !at.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("after the second failure RetryAt = %v, want t0+3s", at.Sub(t0))
	}
	h.clk.Step(2 * time.Second)
	h.known()
	h.apply(eps(0, 3))
	h.s.Wait()
	if got := h.cloud.count("attach"); got != 3 {
		t.Errorf("%d attach calls, want 3", got)
	}
	if !h.cloud.set(ref).Equal(eps(0, 3)) || !h.s.RetryAt(ref).IsZero() {
		t.Errorf("not repaired: %v, retry at %v", h.cloud.set(ref).Sorted(), h.s.RetryAt(ref))
	}
}

// TestGone: NotFound on attach reports the NEG gone and drops its state; on detach the
// endpoints count as detached.
func TestGone(t *testing.T) {
	h := newHarness(t, nil)
	h.cloud.put(ref, ep(0))
	h.known()
	h.cloud.failNext(errNotFound)
	h.apply(eps(0, 0))
	h.s.Wait()
	if d := h.dones(); len(d) != 1 || !d[0].Gone || d[0].Err != nil || d[0].Succeeded != 1 {
		t.Fatalf("detach on a gone NEG: %+v, want gone and succeeded", d)
	}
	h.known()
	h.cloud.failNext(errNotFound)
	h.apply(eps(0, 2))
	h.s.Wait()
	d := h.dones()
	if len(d) != 2 || !d[1].Gone || !errors.Is(d[1].Err, errNotFound) {
		t.Fatalf("attach on a gone NEG: %+v", d)
	}
	if _, ok := h.s.Attached()[ref]; ok {
		t.Errorf("state of a gone NEG kept")
	}
}

// TestRefreshListsOnlyWhenNeeded: a known NEG is listed again only when its verify is due,
// at a point between half of and the whole period, fixed per NEG.
func TestRefreshListsOnlyWhenNeeded(t *testing.T) {
	h := newHarness(t, nil)
	verifyAt, err := h.s.Refresh(context.Background(), ref, owner)
	if err != nil || h.cloud.count("list") != 1 {
		t.Fatalf("first Refresh: %v, %d lists", err, h.cloud.count("list"))
	}
	if d := verifyAt.Sub(t0); d < 30*time.Minute || d > time.Hour {
		t.Fatalf("verify due after %s, want within [30m, 1h]", d)
	}
	h.clk.SetTime(verifyAt.Add(-time.Millisecond))
	if again, _ := h.s.Refresh(context.Background(), ref, owner); !again.Equal(verifyAt) || h.cloud.count("list") != 1 {
		t.Fatalf("Refresh before due listed (%d lists) or moved the verify (%v)", h.cloud.count("list"), again)
	}
	h.clk.SetTime(verifyAt)
	if _, err := h.s.Refresh(context.Background(), ref, owner); err != nil || h.cloud.count("list") != 2 {
		t.Fatalf("Refresh when due: %v, %d lists, want 2", err, h.cloud.count("list"))
	}
}

func TestVerifyDueSpreadsOverThePeriod(t *testing.T) {
	const period = 10 * time.Minute
	h := newHarness(t, func(c *Config) { c.VerifyPeriod = period })
	lo, hi := period, time.Duration(0)
	for i := 0; i < 1000; i++ {
		r := neg.Ref{Zone: "us-central1-a", Name: fmt.Sprintf("k8s1-0123abcd-ns-svc-%d-deadbeef", i)}
		d := h.s.verifyDue(r, t0).Sub(t0)
		if d < period/2 || d > period {
			t.Fatalf("%s: due after %s, want within [%s, %s]", r, d, period/2, period)
		}
		if again := h.s.verifyDue(r, t0).Sub(t0); again != d {
			t.Fatalf("%s: due after %s then %s, want a fixed point per NEG", r, d, again)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < period*4/10 {
		t.Errorf("1000 NEGs due within [%s, %s], want them spread over most of the second half", lo, hi)
	}
}

// TestCallDuringListing: a call that finishes while a listing runs is replayed on the
// listing's result, which predates it; a call that fails meanwhile makes the listing untrusted
// (its partial effect may or may not show), so the endpoints stay unknown.
func TestCallDuringListing(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			h := newHarness(t, nil)
			h.cloud.put(ref, ep(0))
			h.known()
			h.clk.Step(2 * time.Hour) // the verify is due: the next Refresh lists
			h.cloud.listGate = make(chan struct{})
			h.cloud.entered = make(chan string, 10)
			listed := make(chan error)
			go func() {
				_, err := h.s.Refresh(context.Background(), ref, owner)
				listed <- err
			}()
			if m := <-h.cloud.entered; m != "list" {
				t.Fatalf("first call %s, want list", m)
			}
			if fail {
				h.cloud.failNext(errServer)
			}
			h.apply(eps(0, 2)) // the listing has read {ep0} already
			h.s.Wait()
			close(h.cloud.listGate)
			if err := <-listed; err != nil {
				t.Fatal(err)
			}
			n, known := h.s.Attached()[ref]
			switch {
			case fail && known:
				t.Errorf("listing trusted despite a failed call during it (%d endpoints)", n)
			case !fail && (!known || n != 2):
				t.Errorf("listing + replayed attach = %d endpoints (known %v), want 2", n, known)
			}
		})
	}
}

// TestDeferDelete: refused deletes back off as "retry later", capped.
func TestDeferDelete(t *testing.T) {
	h := newHarness(t, nil)
	var got []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, h.s.DeferDelete(ref, errInUse, 40*time.Second).Sub(t0))
	}
	want := []time.Duration{15 * time.Second, 30 * time.Second, 40 * time.Second, 40 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DeferDelete delays = %v, want %v", got, want)
	}
	if at := h.s.DeleteRetryAt(ref); !at.Equal(t0.Add(40 * time.Second)) {
		t.Errorf("DeleteRetryAt = %v", at)
	}
}

// TestFailureMessages: Fail and Note keep the last message for the status writers, per NEG,
// until cleared; ClearFailures clears one Service's only.
func TestFailureMessages(t *testing.T) {
	h := newHarness(t, nil)
	other := neg.Ref{Zone: "zone-b", Name: "k8s1-neg"}
	h.s.Fail(ref, owner, errServer, "CreateNEGFailed", "boom")
	h.s.Note(other, cache.ObjectName{Namespace: "x", Name: "y"}, "NEGInUse", "in use")
	if f, ok := h.s.Failure(ref); !ok || f.Reason != "CreateNEGFailed" || f.Message != "boom" || f.Owner != owner {
		t.Errorf("Failure = %+v, %v", f, ok)
	}
	h.s.ClearFailures(owner)
	if _, ok := h.s.Failure(ref); ok {
		t.Errorf("failure of the Service not cleared")
	}
	if _, ok := h.s.Failure(other); !ok {
		t.Errorf("failure of another Service cleared")
	}
	h.s.ClearFailure(other)
	if _, ok := h.s.Failure(other); ok {
		t.Errorf("ClearFailure did not clear")
	}
}
