package svcneg

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"
)

func TestObserve(t *testing.T) {
	ref := func(id string) *NegObjectReference {
		return &NegObjectReference{ID: id, NetworkEndpointType: "GCE_VM_IP_PORT"}
	}
	withState := func(id, state string) NegObjectReference {
		return NegObjectReference{ID: id, NetworkEndpointType: "GCE_VM_IP_PORT", State: state}
	}
	ok := Check{OK: true}
	var many []ZoneNEG
	for i := range 7 {
		many = append(many, ZoneNEG{Active: true, Problem: fmt.Sprintf("zone %d missing", i)})
	}
	cases := []struct {
		name string
		negs []ZoneNEG
		want Observed
	}{
		{"no zone", nil, Observed{Initialized: Check{Message: "no zone"}, Synced: &Check{Message: "no zone"}}},
		{"only an inactive NEG", []ZoneNEG{{NEG: ref("1"), Settled: true}},
			Observed{NEGs: []NegObjectReference{withState("1", StateInactive)}, Initialized: Check{Message: "no zone"},
				Synced: &Check{Message: "no zone"}}},
		{"all settled", []ZoneNEG{{Active: true, NEG: ref("1"), Settled: true}, {NEG: ref("2"), Settled: true}},
			Observed{NEGs: []NegObjectReference{withState("1", StateActive), withState("2", StateInactive)}, Initialized: ok, Synced: &ok}},
		{"calls in flight: Synced left as is", []ZoneNEG{{Active: true, NEG: ref("1")}},
			Observed{NEGs: []NegObjectReference{withState("1", StateActive)}, Initialized: ok}},
		{"a NEG missing", []ZoneNEG{{Active: true, NEG: ref("1"), Settled: true}, {Active: true, Problem: "b missing"}},
			Observed{NEGs: []NegObjectReference{withState("1", StateActive)}, Initialized: Check{Message: "b missing"},
				Synced: &Check{Message: "b missing"}}},
		{"an inactive zone without NEG is no problem", []ZoneNEG{{Active: true, NEG: ref("1"), Settled: true}, {Problem: "ignored"}},
			Observed{NEGs: []NegObjectReference{withState("1", StateActive)}, Initialized: ok, Synced: &ok}},
		{"failing beats pending, sorted", []ZoneNEG{{Active: true, NEG: ref("1"), Problem: "z full"},
			{Active: true, NEG: ref("2")}, {Active: true, NEG: ref("3"), Problem: "a failing"}},
			Observed{NEGs: []NegObjectReference{withState("1", StateActive), withState("2", StateActive), withState("3", StateActive)},
				Initialized: ok, Synced: &Check{Message: "a failing; z full"}}},
		{"at most MaxProblems listed", many, Observed{
			Initialized: Check{Message: "zone 0 missing; zone 1 missing; zone 2 missing; zone 3 missing; zone 4 missing; and 2 more"},
			Synced:      ptr.To(Check{Message: "zone 0 missing; zone 1 missing; zone 2 missing; zone 3 missing; zone 4 missing; and 2 more"})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := append([]ZoneNEG(nil), c.negs...)
			if d := cmp.Diff(c.want, Observe(c.negs, "no zone")); d != "" {
				t.Errorf("Observe (-want +got):\n%s", d)
			}
			if d := cmp.Diff(in, c.negs); d != "" {
				t.Errorf("Observe modified its input (-before +after):\n%s", d)
			}
		})
	}
}
