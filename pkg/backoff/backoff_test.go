package backoff

import (
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

func TestBackoffDelay(t *testing.T) {
	b := Policy{Base: time.Second, Max: 5 * time.Minute, Later: 15 * time.Second}
	cases := []struct {
		failures int
		policy   gce.RetryPolicy
		want     time.Duration
	}{
		{1, gce.RetryWithBackoff, time.Second},
		{2, gce.RetryWithBackoff, 2 * time.Second},
		{5, gce.RetryWithBackoff, 16 * time.Second},
		{9, gce.RetryWithBackoff, 256 * time.Second},
		{10, gce.RetryWithBackoff, 5 * time.Minute},
		{1000, gce.RetryWithBackoff, 5 * time.Minute},
		{1, gce.RetryLater, 15 * time.Second},
		{3, gce.RetryLater, time.Minute},
		{6, gce.RetryLater, 5 * time.Minute},
		{1, gce.NoRetry, 5 * time.Minute},
		{0, gce.RetryWithBackoff, time.Second},
	}
	for _, c := range cases {
		if got := b.Delay(c.failures, c.policy); got != c.want {
			t.Errorf("Delay(%d, %s) = %s, want %s", c.failures, c.policy, got, c.want)
		}
	}
	if d := (Policy{}).Delay(100, gce.RetryWithBackoff); d != DefaultMax {
		t.Errorf("default cap = %s, want %s", d, DefaultMax)
	}
	for i := 0; i < 100; i++ {
		if j := Jitter(10 * time.Second); j < 10*time.Second || j > 11*time.Second {
			t.Fatalf("jitter out of range: %s", j)
		}
	}
}

func TestForClass(t *testing.T) {
	cases := map[gce.Class]gce.RetryPolicy{
		gce.RateLimited:   gce.RetryLater,
		gce.QuotaExceeded: gce.RetryLater,
		gce.InUse:         gce.RetryLater,
		gce.Server:        gce.RetryWithBackoff,
		gce.NotFound:      gce.RetryWithBackoff,
		gce.AlreadyExists: gce.RetryWithBackoff,
		gce.Invalid:       gce.NoRetry,
		gce.Permanent:     gce.NoRetry,
		gce.Canceled:      gce.NoRetry,
	}
	for class, want := range cases {
		if got := ForClass(class); got != want {
			t.Errorf("ForClass(%s) = %s, want %s", class, got, want)
		}
	}
}
