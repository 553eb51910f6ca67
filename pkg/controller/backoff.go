package controller

import (
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

// Backoff is the retry policy of the controller, used both per Service key (sync errors) and
// per NEG (failed attach, detach, list, create or delete calls).
//
// The n-th consecutive failure of a retryable error waits Base·2^(n-1), capped at Max. Errors
// that need something outside the request to change first — rate limits (429 /
// rateLimitExceeded), quota, a NEG still used by a backend service — wait at least Later,
// doubling the same way, capped at Max. Errors that cannot succeed by retrying alone wait Max:
// the controller never gives up, it retries slowly. Every delay gets up to 10% jitter.
type Backoff struct {
	// Base is the first retry delay; default 1 s.
	Base time.Duration
	// Max caps every delay; default 5 min.
	Max time.Duration
	// Later is the first delay for "retry later" errors; default 15 s.
	Later time.Duration
}

// Default backoff values.
const (
	DefaultBackoffBase  = time.Second
	DefaultBackoffMax   = 5 * time.Minute
	DefaultBackoffLater = 15 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBackoffBase
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Later <= 0 {
		b.Later = DefaultBackoffLater
	}
	if b.Later > b.Max {
		b.Later = b.Max
	}
	if b.Base > b.Max {
		b.Base = b.Max
	}
	return b
}

// retryPolicy returns how the controller retries an error of class c. It follows gce.Retry
// except that rate limits are "retry later": the adapter already retried the call and slowed
// its limiter, so another quick attempt would only add to the throttling.
//
// NotFound and AlreadyExists are retried with backoff: the next attempt re-reads the state
// (re-creates a NEG deleted behind our back, or checks the ownership of one found).
func retryPolicy(c gce.Class) gce.RetryPolicy {
	switch c {
	case gce.RateLimited:
		return gce.RetryLater
	case gce.NotFound, gce.AlreadyExists:
		return gce.RetryWithBackoff
	}
	if c == gce.Success || c == gce.Canceled {
		return gce.NoRetry
	}
	return gce.Retry(c)
}

// Delay returns the delay before the retry that follows the failures-th consecutive failure
// (failures ≥ 1) of an error with the given policy, without jitter.
func (b Backoff) Delay(failures int, policy gce.RetryPolicy) time.Duration {
	b = b.withDefaults()
	if failures < 1 {
		failures = 1
	}
	first := b.Base
	switch policy {
	case gce.RetryLater:
		first = b.Later
	case gce.NoRetry:
		return b.Max
	}
	d := first
	for i := 1; i < failures; i++ {
		d *= 2
		if d >= b.Max || d <= 0 {
			return b.Max
		}
	}
	if d > b.Max {
		return b.Max
	}
	return d
}

// jitter adds up to 10% to d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// keyBackoff counts consecutive sync failures per Service key. It implements
// workqueue.TypedRateLimiter so the queue's AddRateLimited uses it; RetryLater errors go
// through whenLater instead.
type keyBackoff struct {
	b        Backoff
	mu       sync.Mutex
	failures map[cache.ObjectName]int
}

func newKeyBackoff(b Backoff) *keyBackoff {
	return &keyBackoff{b: b.withDefaults(), failures: map[cache.ObjectName]int{}}
}

// When records a failure of key and returns the delay before its retry.
func (k *keyBackoff) When(key cache.ObjectName) time.Duration {
	return k.next(key, gce.RetryWithBackoff)
}

// whenPolicy records a failure of key and returns the delay for policy.
func (k *keyBackoff) next(key cache.ObjectName, policy gce.RetryPolicy) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures[key]++
	return jitter(k.b.Delay(k.failures[key], policy))
}

// Forget resets the failures of key.
func (k *keyBackoff) Forget(key cache.ObjectName) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.failures, key)
}

// NumRequeues returns the consecutive failures of key.
func (k *keyBackoff) NumRequeues(key cache.ObjectName) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures[key]
}
