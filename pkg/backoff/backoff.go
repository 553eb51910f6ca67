// Package backoff is the retry policy of neg-controller: how long to wait after the n-th
// consecutive failure of a call, given how GCE's error is classified (pkg/gce). It is used per
// Service key (sync errors: Keyed, the Service queue's rate limiter), per NEG (failed calls,
// pkg/negsync) and by the start-up listing.
package backoff

import (
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

// Policy is the retry policy.
//
// The n-th consecutive failure of a retryable error waits Base·2^(n-1), capped at Max. Errors
// that need something outside the request to change first — rate limits (429 /
// rateLimitExceeded), quota, a NEG still used by a backend service — wait at least Later,
// doubling the same way, capped at Max. Errors that cannot succeed by retrying alone wait Max:
// the controller never gives up, it retries slowly. Callers add Jitter.
type Policy struct {
	// Base is the first retry delay; default 1 s.
	Base time.Duration
	// Max caps every delay; default 5 min.
	Max time.Duration
	// Later is the first delay for "retry later" errors; default 15 s.
	Later time.Duration
}

// Default values of a zero Policy.
const (
	DefaultBase  = time.Second
	DefaultMax   = 5 * time.Minute
	DefaultLater = 15 * time.Second
)

// WithDefaults fills zero fields and keeps Base and Later within Max.
func (b Policy) WithDefaults() Policy {
	if b.Base <= 0 {
		b.Base = DefaultBase
	}
	if b.Max <= 0 {
		b.Max = DefaultMax
	}
	if b.Later <= 0 {
		b.Later = DefaultLater
	}
	b.Later = min(b.Later, b.Max)
	b.Base = min(b.Base, b.Max)
	return b
}

// ForClass returns how the controller retries an error of class c. It follows gce.Retry
// except that rate limits are "retry later": the adapter already retried the call and slowed
// its limiter, so another quick attempt would only add to the throttling.
//
// NotFound and AlreadyExists are retried with backoff: the next attempt re-reads the state
// (re-creates a NEG deleted behind our back, or checks the ownership of one found).
func ForClass(c gce.Class) gce.RetryPolicy {
	switch c {
	case gce.RateLimited:
		return gce.RetryLater
	case gce.NotFound, gce.AlreadyExists:
		return gce.RetryWithBackoff
	case gce.Success, gce.Canceled:
		return gce.NoRetry
	}
	return gce.Retry(c)
}

// Delay returns the delay before the retry that follows the failures-th consecutive failure
// (failures ≥ 1) of an error with the given policy, without jitter.
func (b Policy) Delay(failures int, policy gce.RetryPolicy) time.Duration {
	b = b.WithDefaults()
	failures = max(failures, 1)
	d := b.Base
	switch policy {
	case gce.RetryLater:
		d = b.Later
	case gce.NoRetry:
		return b.Max
	}
	for i := 1; i < failures; i++ {
		d *= 2
		if d >= b.Max || d <= 0 {
			return b.Max
		}
	}
	return min(d, b.Max)
}

// ErrorDelay is Delay for err's class.
func (b Policy) ErrorDelay(failures int, err error) time.Duration {
	return b.Delay(failures, ForClass(gce.Classify(err)))
}

// Jitter adds up to 10% to d, so that retries of many failures spread out.
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return wait.Jitter(d, 0.1)
}
