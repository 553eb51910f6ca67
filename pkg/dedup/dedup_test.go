package dedup

import (
	"testing"

	"k8s.io/client-go/tools/cache"
)

func TestWarnings(t *testing.T) {
	w := NewWarnings()
	k := cache.ObjectName{Namespace: "ns", Name: "svc"}
	if !w.Changed(k, "s", "m1") || w.Changed(k, "s", "m1") {
		t.Error("same message reported twice or first not reported")
	}
	if !w.Changed(k, "s", "m2") {
		t.Error("new message not reported")
	}
	w.Clear(k, "s")
	if !w.Changed(k, "s", "m2") {
		t.Error("message not reported after clear")
	}
	w.Changed(k, "other", "x")
	w.Keep(k, map[string]bool{"s": true})
	if w.Changed(k, "s", "m2") || !w.Changed(k, "other", "x") {
		t.Error("Keep dropped a kept slot or kept a dropped one")
	}
	w.Keep(k, nil)
	if !w.Changed(k, "s", "m2") {
		t.Error("Keep(nil) kept a slot")
	}
}
