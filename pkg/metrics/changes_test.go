package metrics

import (
	"testing"
	"time"

	"k8s.io/client-go/tools/cache"
)

func TestChanges(t *testing.T) {
	k := cache.ObjectName{Namespace: "ns", Name: "svc"}
	t0 := time.Unix(1000, 0)
	tr := NewChanges()
	tr.Observe(k, t0)
	tr.Begin(k)
	if got := tr.Active(k); !got.IsZero() {
		t.Errorf("recorded before arm: %v", got)
	}
	tr.End(k, false)

	tr.Arm()
	tr.Observe(k, t0)
	tr.Observe(k, t0.Add(time.Second)) // the earliest pending change is kept
	tr.Begin(k)
	if got := tr.Active(k); !got.Equal(t0) {
		t.Errorf("active = %v, want %v", got, t0)
	}
	tr.Observe(k, t0.Add(2*time.Second)) // during the sync: a new pending change
	tr.End(k, true)                      // failed: the older change comes back
	tr.Begin(k)
	if got := tr.Active(k); !got.Equal(t0) {
		t.Errorf("after failed sync active = %v, want %v", got, t0)
	}
	tr.End(k, false)
	tr.Begin(k)
	if got := tr.Active(k); !got.IsZero() {
		t.Errorf("after successful sync active = %v, want none", got)
	}
}
