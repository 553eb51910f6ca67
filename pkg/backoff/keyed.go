package backoff

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
)

// Keyed counts consecutive sync failures per key (the NEG controller's Service keys). It
// implements workqueue.TypedRateLimiter so a queue's AddRateLimited uses it.
//
// It is not client-go's ItemExponentialFailureRateLimiter (which the backend-service and
// NEGBinding queues use) because the Service queue follows Policy, the retry policy the
// per-NEG retries and the start-up listing share: its delays are jittered (client-go's are
// exact, so keys that failed together retry together), capped at Policy.Max (the controller
// never gives up, it retries slowly), and the same numbers govern every retry.
// The per-NEG retries also choose the delay by the GCE error's class ("retry later" for rate
// limits, quota, NEG in use), which a workqueue.TypedRateLimiter cannot see: When gets only the
// key. A sync error here is classed RetryWithBackoff.
type Keyed struct {
	b        Policy
	mu       sync.Mutex
	failures map[cache.ObjectName]int
}

// NewKeyed returns a Keyed following the policy b (defaults filled in).
func NewKeyed(b Policy) *Keyed {
	return &Keyed{b: b.WithDefaults(), failures: map[cache.ObjectName]int{}}
}

// When records a failure of key and returns the delay before its retry.
func (k *Keyed) When(key cache.ObjectName) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures[key]++
	return Jitter(k.b.Delay(k.failures[key], gce.RetryWithBackoff))
}

// Forget resets the failures of key.
func (k *Keyed) Forget(key cache.ObjectName) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.failures, key)
}

// NumRequeues returns the consecutive failures of key.
func (k *Keyed) NumRequeues(key cache.ObjectName) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.failures[key]
}
