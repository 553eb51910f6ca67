package bench

import (
	"testing"
	"time"
)

func TestGateSummary(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tr := &gateTracker{pods: map[string]*gatePod{
		// Gate True 1.2 s after attach, 2 s after creation.
		"ns/a": {tCreated: at(0), tGCE: at(800), tGate: at(2000), reason: "LoadBalancerNegReady"},
		// Still waiting at the end (censored); attached.
		"ns/b": {tCreated: at(0), tGCE: at(500)},
		// Create never returned: not a sample.
		"ns/c": {},
		// Gate True but the attach poll never saw it: only in FromCreate.
		"ns/d": {tCreated: at(100), tGate: at(1100), reason: "LoadBalancerNegTimeout"},
		// Replaced before its gate opened: counted, not a sample.
		"ns/e": {tCreated: at(0), tGCE: at(300), deleted: true},
	}}
	g := tr.summary(at(5000))
	if g.FromGCE.N != 2 || g.FromGCE.Censored != 1 || g.FromGCE.P50 != 1.2 || g.FromGCE.Max != 4.5 {
		t.Errorf("FromGCE = %+v", g.FromGCE)
	}
	if g.FromCreate.N != 3 || g.FromCreate.Censored != 1 || g.FromCreate.P50 != 2 || g.FromCreate.Max != 5 {
		t.Errorf("FromCreate = %+v", g.FromCreate)
	}
	if g.NotInGCE != 1 || g.Replaced != 1 || g.Reasons["LoadBalancerNegReady"] != 1 || g.Reasons["LoadBalancerNegTimeout"] != 1 || len(g.Reasons) != 2 {
		t.Errorf("summary = %+v", g)
	}
	if tr.pending() != 2 {
		t.Errorf("pending = %d, want 2 (b and c)", tr.pending())
	}
}

func TestGateWorkloadTakeSkipsBusySlots(t *testing.T) {
	g := &gateWorkload{slots: []gateSlot{{svc: svcRef{"ns", "s"}, pod: "s-0"}, {svc: svcRef{"ns", "s"}, pod: "s-1"}}}
	i, name, ok := g.take()
	if !ok || i != 0 || name != "s-r1" {
		t.Fatalf("take = %d %q %v", i, name, ok)
	}
	j, _, ok := g.take()
	if !ok || j != 1 {
		t.Fatalf("second take = %d %v, want slot 1", j, ok)
	}
	if _, _, ok := g.take(); ok {
		t.Fatal("take with every slot busy succeeded")
	}
	g.release(0, "s-r1")
	if i, _, ok := g.take(); !ok || i != 0 || g.slots[0].pod != "s-r1" {
		t.Fatalf("after release: %d %v %+v", i, ok, g.slots[0])
	}
}
