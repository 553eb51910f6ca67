package gce_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

func TestFailedOperation(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 10 * time.Millisecond}, nil)
	ctx := testCtx(t)
	e.srv.InjectFault(fakegce.Fault{Method: mInsert, FailOperation: true, OperationErrorCode: "QUOTA_EXCEEDED", Count: 1})

	_, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"})
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("CreateNEG with a failing operation = %v (%T), want a wrapped *googleapi.Error", err, err)
	}
	if gerr.Code != http.StatusForbidden || len(gerr.Errors) == 0 || gerr.Errors[0].Reason != "QUOTA_EXCEEDED" {
		t.Errorf("operation error = %+v, want 403 QUOTA_EXCEEDED", gerr)
	}
	if c := gce.Classify(err); c != gce.QuotaExceeded || gce.Retry(c) != gce.RetryLater {
		t.Errorf("class = %v, want QuotaExceeded/RetryLater", c)
	}
	if n := len(e.requests(mInsert)); n != 1 {
		t.Errorf("a failed operation was retried: %d inserts", n)
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); !gce.IsNotFound(err) {
		t.Errorf("failed insert left a NEG: %v", err)
	}
	if got := e.obs.op(mInsertOp + "/QuotaExceeded"); got != 1 {
		t.Errorf("observed %d QuotaExceeded insert operations, want 1", got)
	}

	// An internal operation failure is a retryable Server error.
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	addNodes(t, e.srv, zoneA, 1)
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, FailOperation: true, Count: 1})
	err = e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(3))
	if c := gce.Classify(err); c != gce.Server {
		t.Errorf("attach with an INTERNAL_ERROR operation = %v (class %v), want Server", err, c)
	}
}

func TestRateLimitedRetrySameRequestID(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	before := e.cloud.RateLimiterState()[gce.BudgetMutations]
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, Code: http.StatusTooManyRequests, Reason: "rateLimitExceeded", Count: 1})

	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(10)); err != nil {
		t.Fatalf("AttachNetworkEndpoints after one 429: %v", err)
	}
	recs := e.requests(mAttach)
	if len(recs) != 2 {
		t.Fatalf("attach sent %d times, want 2 (429, then success): %+v", len(recs), recs)
	}
	if recs[0].Status != http.StatusTooManyRequests || recs[1].Status != http.StatusOK {
		t.Errorf("statuses = %d, %d; want 429, 200", recs[0].Status, recs[1].Status)
	}
	if recs[0].RequestID == "" || recs[0].RequestID != recs[1].RequestID {
		t.Errorf("retry used requestId %q, first attempt %q; want the same", recs[1].RequestID, recs[0].RequestID)
	}
	after := e.cloud.RateLimiterState()[gce.BudgetMutations]
	if !(after < before) {
		t.Errorf("attach rate %v after a 429, before %v: want slower", after, before)
	}
	if got := e.obs.req(mAttachOp + "/RateLimited"); got != 1 {
		t.Errorf("observed %d RateLimited attach requests, want 1", got)
	}
	if got, _ := e.srv.NEGEndpoints(zoneA, "web"); len(got) != 10 {
		t.Errorf("NEG holds %d endpoints, want 10", len(got))
	}
}

func TestServerErrorRetriesBounded(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) { c.MaxCallAttempts = 3 })
	ctx := testCtx(t)
	e.srv.InjectFault(fakegce.Fault{Method: mInsert, Code: http.StatusServiceUnavailable, Count: 5})
	_, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"})
	if c := gce.Classify(err); c != gce.Server {
		t.Fatalf("CreateNEG under 503s = %v (class %v), want Server", err, c)
	}
	recs := e.requests(mInsert)
	if len(recs) != 3 {
		t.Fatalf("insert sent %d times, want 3", len(recs))
	}
	for _, r := range recs[1:] {
		if r.RequestID != recs[0].RequestID {
			t.Errorf("requestIds differ across retries: %q vs %q", r.RequestID, recs[0].RequestID)
		}
	}
	// The next logical mutation gets a new requestId and succeeds (2 faults left, 3 attempts).
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatalf("second CreateNEG: %v", err)
	}
	recs = e.requests(mInsert)
	if len(recs) != 6 || recs[3].RequestID == recs[0].RequestID || recs[5].RequestID != recs[3].RequestID {
		t.Errorf("second mutation's requests: %+v", recs[3:])
	}
}

func TestOperationNeverFinishes(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(fakegce.Fault{Method: mAttach, NeverFinish: true, Count: 1})
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := e.cloud.AttachNetworkEndpoints(short, zoneA, "web", podEndpoints(1))
	if !errors.Is(err, context.DeadlineExceeded) || gce.Classify(err) != gce.Server {
		t.Errorf("attach with a stuck operation = %v (class %v), want a deadline (Server)", err, gce.Classify(err))
	}
	// The caller's deadline, shorter than Config.OperationTimeout, ended the wait.
	var te *gce.OperationTimeoutError
	if errors.As(err, &te) {
		t.Errorf("the caller's deadline reported as an operation timeout: %v", err)
	}
	if e.cloud.InFlight() != 0 {
		t.Errorf("%d in-flight slots still taken", e.cloud.InFlight())
	}
}

// concurrencyTransport counts concurrent requests.
type concurrencyTransport struct {
	cur, max atomic.Int64
}

func (c *concurrencyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.cur.Add(1)
	defer c.cur.Add(-1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestMaxInFlight(t *testing.T) {
	tr := &concurrencyTransport{}
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) {
		c.MaxInFlight = 3
		c.HTTPClient = &http.Client{Transport: tr}
		c.RateLimits = map[string]gce.RateLimit{gce.GroupGetNEG: {QPS: 1000, Burst: 1000}}
	})
	ctx := testCtx(t)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(fakegce.Fault{Method: mGet, Latency: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
				t.Errorf("GetNEG: %v", err)
			}
		})
	}
	wg.Wait()
	if m := tr.max.Load(); m > 3 || m < 2 {
		t.Errorf("max concurrent requests = %d, want 2..3 (MaxInFlight 3)", m)
	}
}

func TestRateLimitWaitObserved(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) {
		c.RateLimits = map[string]gce.RateLimit{gce.GroupGetNEG: {QPS: 50, Burst: 1}}
	})
	ctx := testCtx(t)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 5 {
		if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
			t.Fatal(err)
		}
	}
	e.obs.mu.Lock()
	waits := e.obs.waits
	e.obs.mu.Unlock()
	if waits == 0 {
		t.Errorf("no rate-limit wait observed for 5 gets at 50 qps burst 1 (took %v)", time.Since(start))
	}
}

func TestWaitRetriedOnServerErrors(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 30 * time.Millisecond}, nil)
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	e.srv.InjectFault(fakegce.Fault{Method: mWait, Code: http.StatusServiceUnavailable, Count: 2})
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(5)); err != nil {
		t.Fatalf("attach with two failed waits: %v", err)
	}
	waits := e.requests(mWait)
	if len(waits) < 3 || waits[0].Status != http.StatusServiceUnavailable || waits[len(waits)-1].Status != http.StatusOK {
		t.Errorf("wait calls: %+v; want two 503s then success", waits)
	}
	if n := len(e.requests(mAttach)); n != 1 {
		t.Errorf("attach re-sent %d times because of failed waits, want 1", n)
	}
	if got := e.obs.req("zoneOperations.wait/Server"); got != 2 {
		t.Errorf("observed %d failed waits, want 2", got)
	}
}

func TestCallTimeoutRetried(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) { c.CallTimeout = 100 * time.Millisecond })
	ctx := testCtx(t)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.InjectFault(fakegce.Fault{Method: mGet, Latency: time.Second, Count: 1})
	if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
		t.Fatalf("GetNEG after one slow call: %v", err)
	}
	if got := e.obs.req("networkEndpointGroups.get/Server"); got != 1 {
		t.Errorf("observed %d timed-out gets, want 1", got)
	}
}

// TestOneMutationBudget: NEG insert, attach and detach draw from one mutation budget (on the
// old per-method buckets the detach would not have waited), gets, lists and operation waits
// from their own, each call taking exactly one token of its budget.
func TestOneMutationBudget(t *testing.T) {
	e := newEnv(t, fakegce.Config{}, func(c *gce.Config) {
		c.Budgets = map[string]int{gce.BudgetMutations: 120} // burst 2, then one token every ~0.5 s
	})
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(2)); err != nil {
		t.Fatal(err)
	}
	if e.obs.waited() != 0 {
		t.Fatalf("the budget's burst of 2 made a call wait")
	}
	if err := e.cloud.DetachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(1)); err != nil {
		t.Fatal(err)
	}
	if e.obs.waited() != 1 {
		t.Errorf("%d calls waited, want 1: the detach, for the budget insert and attach spent", e.obs.waited())
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "web"); err != nil {
		t.Fatal(err)
	}
	listed(t, ctx, e.cloud, zoneA, "web")
	want := map[string]uint64{gce.BudgetMutations: 3, gce.BudgetReads: 1, gce.BudgetLists: 1, gce.BudgetOperationReads: 0}
	if diff := cmp.Diff(want, e.cloud.RateLimiterGranted()); diff != "" {
		t.Errorf("granted (-want +got):\n%s", diff)
	}
	if got := e.cloud.ConfiguredQPS()[gce.BudgetMutations]; got != 118.0/60 {
		t.Errorf("configured mutation rate %v, want 118/60", got)
	}
}

func TestBudgetRate(t *testing.T) {
	cases := []struct {
		perMinute int
		want      gce.RateLimit
	}{
		{0, gce.RateLimit{}},
		{1, gce.RateLimit{QPS: 1.0 / 60, Burst: 1}},
		{120, gce.RateLimit{QPS: 118.0 / 60, Burst: 2}},
		{1500, gce.RateLimit{QPS: 1475.0 / 60, Burst: 25}},
		{36000, gce.RateLimit{QPS: 35400.0 / 60, Burst: 600}},
	}
	for _, tc := range cases {
		if got := gce.BudgetRate(tc.perMinute); got != tc.want {
			t.Errorf("BudgetRate(%d) = %+v, want %+v", tc.perMinute, got, tc.want)
		}
		// No minute sees more than the budget: a full burst plus a minute of refill.
		if rl := gce.BudgetRate(tc.perMinute); tc.perMinute > 1 && float64(rl.Burst)+60*rl.QPS > float64(tc.perMinute)+1e-9 {
			t.Errorf("BudgetRate(%d) allows %v calls in a minute", tc.perMinute, float64(rl.Burst)+60*rl.QPS)
		}
	}
}
