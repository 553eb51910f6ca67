package controller

import (
	"testing"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// TestCreationsLimit: at most limit inserts are in flight; Services that find no room wait in
// the order they asked, once each, and every ending insert hands its slot to the next of them.
func TestCreationsLimit(t *testing.T) {
	cr := newCreations(2)
	ref := func(z string) neg.Ref { return neg.Ref{Zone: z, Name: "n"} }
	svc := func(n string) cache.ObjectName { return cache.ObjectName{Namespace: "default", Name: n} }
	if !cr.begin(ref("a"), svc("s1")) || !cr.begin(ref("b"), svc("s2")) {
		t.Fatal("the first two inserts must start")
	}
	if cr.begin(ref("a"), svc("s1")) {
		t.Error("a second insert of a NEG in flight started")
	}
	for _, k := range []string{"s3", "s3", "s4"} { // s3 asks twice, waits once
		if cr.begin(ref("c-"+k), svc(k)) {
			t.Fatalf("insert for %s started beyond the limit", k)
		}
	}
	for i, want := range []string{"s3", "s4"} {
		next, ok := cr.end(ref([]string{"a", "b"}[i]))
		if !ok || next != svc(want) {
			t.Fatalf("end handed the turn to %v (%v), want %s", next, ok, want)
		}
		if !cr.begin(ref("c-"+want), svc(want)) {
			t.Fatalf("%s could not start in its turn", want)
		}
	}
	for _, k := range []string{"s3", "s4"} {
		if next, ok := cr.end(ref("c-" + k)); ok {
			t.Errorf("end handed a turn to %v with nobody waiting", next)
		}
	}
	if cr.inFlight(ref("b")) || cr.inFlight(ref("a")) {
		t.Error("ended inserts still in flight")
	}
}
