package backoff

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"k8s.io/client-go/tools/cache"
)

func TestKeyed(t *testing.T) {
	k := NewKeyed(Policy{Base: time.Second, Max: 4 * time.Second})
	key := cache.ObjectName{Namespace: "ns", Name: "svc"}
	var got []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, k.When(key).Truncate(time.Second))
	}
	if d := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}, got); d != "" {
		t.Errorf("delays (-want +got):\n%s", d)
	}
	if k.NumRequeues(key) != 4 {
		t.Errorf("NumRequeues = %d", k.NumRequeues(key))
	}
	k.Forget(key)
	if d := k.When(key); d >= 2*time.Second {
		t.Errorf("after Forget: %s", d)
	}
}
