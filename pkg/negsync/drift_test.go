package negsync

import (
	"fmt"
	"testing"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

func TestSizeDrift(t *testing.T) {
	const start = 10
	quiet := sizeView{known: true, count: 3, changedSeq: start}
	with := func(f func(v *sizeView)) sizeView { v := quiet; f(&v); return v }
	for _, tc := range []struct {
		name string
		v    sizeView
		size int64
		want bool
	}{
		{"equal", quiet, 3, false},
		{"fewer in GCE", quiet, 2, true},
		{"more in GCE", quiet, 4, true},
		{"changed long before the NEG listing", with(func(v *sizeView) { v.changedSeq = 1 }), 2, true},
		{"never changed, known empty", sizeView{known: true}, 1, true},
		{"unknown current", with(func(v *sizeView) { v.known = false }), 2, false},
		{"call in flight", with(func(v *sizeView) { v.inFlight = 1 }), 2, false},
		{"listing running", with(func(v *sizeView) { v.listing = true }), 2, false},
		{"changed after the NEG listing started", with(func(v *sizeView) { v.changedSeq = start + 1 }), 2, false},
	} {
		if got := sizeDrift(tc.v, tc.size, start); got != tc.want {
			t.Errorf("%s: sizeDrift(%+v, %d, %d) = %v, want %v", tc.name, tc.v, tc.size, start, got, tc.want)
		}
	}
}

// TestCheckSizes: a drifted NEG is returned with its owner and its endpoints become unknown;
// a NEG changed after the listing started, or unknown to the controller, is left alone.
func TestCheckSizes(t *testing.T) {
	h := newHarness(t, nil)
	a, b := neg.Ref{Zone: "zone-a", Name: "n"}, neg.Ref{Zone: "zone-b", Name: "n"}
	h.s.Created(a, owner)
	start := h.s.Sequence()
	h.s.Created(b, owner) // after the listing started
	listed := []gce.NEG{{Zone: "zone-a", Name: "n", Size: 1}, {Zone: "zone-b", Name: "n", Size: 1}, {Zone: "zone-c", Name: "n", Size: 5}}
	got := h.s.CheckSizes(listed, start)
	want := []Drift{{Ref: a, Owner: owner, Believed: 0, Size: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CheckSizes = %+v, want %+v", got, want)
	}
	attached := h.s.Attached()
	if _, ok := attached[a]; ok {
		t.Errorf("drifted NEG still has known endpoints")
	}
	if _, ok := attached[b]; !ok {
		t.Errorf("NEG changed after the listing started lost its known endpoints")
	}
}
