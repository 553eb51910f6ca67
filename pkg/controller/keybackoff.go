package controller

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// keyBackoff counts consecutive sync failures per Service key. It implements
// workqueue.TypedRateLimiter so the queue's AddRateLimited uses it.
type keyBackoff struct {
	b        backoff.Policy
	mu       sync.Mutex
	failures map[cache.ObjectName]int
}

func newKeyBackoff(b backoff.Policy) *keyBackoff {
	return &keyBackoff{b: b.WithDefaults(), failures: map[cache.ObjectName]int{}}
}

// When records a failure of key and returns the delay before its retry.
func (k *keyBackoff) When(key cache.ObjectName) time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failures[key]++
	return backoff.Jitter(k.b.Delay(k.failures[key], gce.RetryWithBackoff))
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
