package gce_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/googleapi"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// TestEmulatedQuotaIsRateLimited: the emulator's rate quota (GCE's 403 rateLimitExceeded)
// reaches the adapter as a RateLimited *googleapi.Error, the rejected mutation changes nothing,
// and the next minute's window lets it through.
func TestEmulatedQuotaIsRateLimited(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 10, 0, 15, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnv(t, fakegce.Config{Quota: &fakegce.QuotaConfig{
		Limits: map[string]int{fakegce.QuotaDefault: 1},
		Now:    clock,
	}}, func(c *gce.Config) { c.MaxCallAttempts = 2 })
	ctx := testCtx(t)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "first"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "second"})
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) || gerr.Code != http.StatusForbidden || len(gerr.Errors) == 0 || gerr.Errors[0].Reason != "rateLimitExceeded" {
		t.Fatalf("CreateNEG over the quota = %v, want a 403 rateLimitExceeded *googleapi.Error", err)
	}
	if c := gce.Classify(err); c != gce.RateLimited || gce.Retry(c) != gce.RetryWithBackoff {
		t.Errorf("class %v (%v), want RateLimited/RetryWithBackoff", c, gce.Retry(c))
	}
	recs := e.requests(mInsert)
	if len(recs) != 3 || recs[1].Status != http.StatusForbidden || recs[2].Status != http.StatusForbidden {
		t.Errorf("inserts %+v, want 1 allowed then 2 attempts answered 403", recs)
	}
	if _, err := e.cloud.GetNEG(ctx, zoneA, "second"); !gce.IsNotFound(err) {
		t.Errorf("rejected insert created the NEG: %v", err)
	}
	mu.Lock()
	now = time.Date(2026, 1, 2, 10, 1, 0, 0, time.UTC)
	mu.Unlock()
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "second"}); err != nil {
		t.Errorf("CreateNEG in the next window: %v", err)
	}
}
