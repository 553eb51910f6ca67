package plan

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// ep returns a distinct endpoint per i; ep(i) sorts before ep(j) when i < j.
func ep(i int) neg.Endpoint {
	return neg.Endpoint{Instance: "vm", IP: fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256), Port: 8080}
}

// eps returns ep(from) .. ep(to-1).
func eps(from, to int) []neg.Endpoint {
	out := make([]neg.Endpoint, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, ep(i))
	}
	return out
}

func set(e ...neg.Endpoint) neg.EndpointSet { return neg.NewEndpointSet(e...) }

func batches(op Op, size int, e []neg.Endpoint) []Batch {
	neg.SortEndpoints(e)
	var out []Batch
	for len(e) > 0 {
		n := min(size, len(e))
		out = append(out, Batch{Op: op, Endpoints: e[:n]})
		e = e[n:]
	}
	return out
}

// TestComputeDecisionTable covers every row of the decision table: each combination of an
// endpoint being desired, current and in flight.
func TestComputeDecisionTable(t *testing.T) {
	x := ep(1)
	tests := []struct {
		desired, current, inFlight bool
		want                       Plan
	}{
		{false, false, false, Plan{}},
		{false, false, true, Plan{}},
		{false, true, false, Plan{Detach: []Batch{{Op: Detach, Endpoints: []neg.Endpoint{x}}}}},
		{false, true, true, Plan{HeldInFlight: 1}},
		{true, false, false, Plan{Attach: []Batch{{Op: Attach, Endpoints: []neg.Endpoint{x}}}}},
		{true, false, true, Plan{HeldInFlight: 1}},
		{true, true, false, Plan{}},
		{true, true, true, Plan{}},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("desired=%v,current=%v,inFlight=%v", tc.desired, tc.current, tc.inFlight)
		t.Run(name, func(t *testing.T) {
			pick := func(b bool) neg.EndpointSet {
				if b {
					return set(x)
				}
				return nil
			}
			got := Compute(pick(tc.desired), pick(tc.current), pick(tc.inFlight), 500, 10000, Migration{})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name                       string
		desired, current, inFlight neg.EndpointSet
		batchSize, capacity        int
		want                       Plan
	}{
		{name: "all nil", want: Plan{}},
		{name: "in sync", desired: set(eps(0, 10)...), current: set(eps(0, 10)...), batchSize: 3, capacity: 100, want: Plan{}},
		{name: "mixed, sorted batches", desired: set(ep(5), ep(1), ep(3), ep(2)), current: set(ep(2), ep(9), ep(7)), batchSize: 2, capacity: 100,
			want: Plan{
				Attach: []Batch{{Op: Attach, Endpoints: []neg.Endpoint{ep(1), ep(3)}}, {Op: Attach, Endpoints: []neg.Endpoint{ep(5)}}},
				Detach: []Batch{{Op: Detach, Endpoints: []neg.Endpoint{ep(7), ep(9)}}},
			}},
		{name: "sort by IP, then port, then instance", desired: set(
			neg.Endpoint{Instance: "b", IP: "10.0.0.1", Port: 80},
			neg.Endpoint{Instance: "a", IP: "10.0.0.1", Port: 80},
			neg.Endpoint{Instance: "a", IP: "10.0.0.1", Port: 79},
			neg.Endpoint{Instance: "z", IP: "10.0.0.0", Port: 90},
		), batchSize: 10, capacity: 100,
			want: Plan{Attach: []Batch{{Op: Attach, Endpoints: []neg.Endpoint{
				{Instance: "z", IP: "10.0.0.0", Port: 90},
				{Instance: "a", IP: "10.0.0.1", Port: 79},
				{Instance: "a", IP: "10.0.0.1", Port: 80},
				{Instance: "b", IP: "10.0.0.1", Port: 80},
			}}}}},
		{name: "exact multiple of batch size", desired: set(eps(0, 1000)...), batchSize: 500, capacity: 10000,
			want: Plan{Attach: batches(Attach, 500, eps(0, 1000))}},
		{name: "one over batch size", desired: set(eps(0, 501)...), current: set(eps(1000, 2001)...), batchSize: 500, capacity: 10000,
			want: Plan{Attach: batches(Attach, 500, eps(0, 501)), Detach: batches(Detach, 500, eps(1000, 2001))}},
		{name: "defaults for non-positive batch size and capacity", desired: set(eps(0, 501)...), batchSize: 0, capacity: -1,
			want: Plan{Attach: batches(Attach, 500, eps(0, 501))}},
		{name: "in flight held, rest planned", desired: set(eps(0, 6)...), current: set(eps(4, 10)...), inFlight: set(ep(0), ep(5), ep(8), ep(20)),
			batchSize: 10, capacity: 100,
			want: Plan{
				Attach:       []Batch{{Op: Attach, Endpoints: eps(1, 4)}},
				Detach:       []Batch{{Op: Detach, Endpoints: []neg.Endpoint{ep(6), ep(7), ep(9)}}},
				HeldInFlight: 2,
			}},
		{name: "capacity: lowest endpoints win", desired: set(eps(0, 10)...), batchSize: 3, capacity: 4,
			want: Plan{Attach: batches(Attach, 3, eps(0, 4)), OverCapacity: 6}},
		{name: "capacity counts current minus detaches", desired: set(eps(0, 10)...), current: set(append(eps(0, 3), eps(100, 103)...)...),
			batchSize: 10, capacity: 5,
			// current 6 - detach 3 = 3 kept, room 2 of the 7 new.
			want: Plan{Attach: []Batch{{Op: Attach, Endpoints: eps(3, 5)}}, Detach: []Batch{{Op: Detach, Endpoints: eps(100, 103)}}, OverCapacity: 5}},
		{name: "capacity counts in-flight attaches, not in-flight detaches", desired: set(eps(0, 10)...), current: set(ep(50), ep(51)),
			inFlight: set(ep(0), ep(1), ep(51)), batchSize: 10, capacity: 6,
			// kept: ep(50) is detached; ep(51) in flight stays counted => 1. Pending attaches ep(0), ep(1) => 2. Room 3.
			want: Plan{Attach: []Batch{{Op: Attach, Endpoints: eps(2, 5)}}, Detach: []Batch{{Op: Detach, Endpoints: []neg.Endpoint{ep(50)}}},
				HeldInFlight: 3, OverCapacity: 5}},
		{name: "in-flight endpoint neither desired nor current still takes room", desired: set(eps(0, 3)...), inFlight: set(ep(99)),
			batchSize: 10, capacity: 2,
			want: Plan{Attach: []Batch{{Op: Attach, Endpoints: eps(0, 1)}}, OverCapacity: 2}},
		{name: "over capacity already: detaches still planned, no attaches", desired: set(eps(0, 5)...), current: set(eps(10, 20)...),
			batchSize: 100, capacity: 3,
			want: Plan{Detach: []Batch{{Op: Detach, Endpoints: eps(10, 20)}}, Attach: []Batch{{Op: Attach, Endpoints: eps(0, 3)}}, OverCapacity: 2}},
		{name: "full NEG: nothing attached", desired: set(eps(0, 5)...), current: set(eps(0, 3)...), batchSize: 100, capacity: 3,
			want: Plan{OverCapacity: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			copies := []neg.EndpointSet{clone(tc.desired), clone(tc.current), clone(tc.inFlight)}
			got := Compute(tc.desired, tc.current, tc.inFlight, tc.batchSize, tc.capacity, Migration{})
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(copies, []neg.EndpointSet{tc.desired, tc.current, tc.inFlight}); diff != "" {
				t.Errorf("Compute modified its inputs (-before +after):\n%s", diff)
			}
			checkInvariants(t, tc.desired, tc.current, tc.inFlight, tc.batchSize, tc.capacity, got)
		})
	}
}

func clone(s neg.EndpointSet) neg.EndpointSet {
	if s == nil {
		return nil
	}
	return set(s.Sorted()...)
}

// checkInvariants verifies the package-doc invariants on any plan.
func checkInvariants(t *testing.T, desired, current, inFlight neg.EndpointSet, batchSize, capacity int, p Plan) {
	t.Helper()
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	var attached, detached []neg.Endpoint
	for _, part := range []struct {
		op Op
		bs []Batch
		to *[]neg.Endpoint
	}{{Attach, p.Attach, &attached}, {Detach, p.Detach, &detached}} {
		for i, b := range part.bs {
			if b.Op != part.op {
				t.Errorf("%s batch %d has op %q", part.op, i, b.Op)
			}
			if len(b.Endpoints) == 0 || len(b.Endpoints) > batchSize || (i < len(part.bs)-1 && len(b.Endpoints) != batchSize) {
				t.Errorf("%s batch %d has %d endpoints (batch size %d, %d batches)", part.op, i, len(b.Endpoints), batchSize, len(part.bs))
			}
			*part.to = append(*part.to, b.Endpoints...)
		}
		for i := 1; i < len(*part.to); i++ {
			if !(*part.to)[i-1].Less((*part.to)[i]) {
				t.Errorf("%s endpoints not strictly sorted at %d", part.op, i)
			}
		}
	}
	for _, e := range attached {
		if inFlight.Has(e) || current.Has(e) || !desired.Has(e) {
			t.Errorf("attach of %v: inFlight=%v current=%v desired=%v", e, inFlight.Has(e), current.Has(e), desired.Has(e))
		}
	}
	for _, e := range detached {
		if inFlight.Has(e) || !current.Has(e) || desired.Has(e) {
			t.Errorf("detach of %v: inFlight=%v current=%v desired=%v", e, inFlight.Has(e), current.Has(e), desired.Has(e))
		}
	}
	pending := 0
	for e := range inFlight {
		if !current.Has(e) {
			pending++
		}
	}
	if len(attached) > 0 {
		if n := len(current) - len(detached) + pending + len(attached); n > capacity {
			t.Errorf("projected size %d exceeds capacity %d", n, capacity)
		}
	}
}

func TestComputeDeterministic(t *testing.T) {
	desired, current := set(eps(0, 3000)...), set(eps(1500, 4000)...)
	inFlight := set(ep(10), ep(3500))
	first := Compute(desired, current, inFlight, 500, 2500, Migration{})
	for i := 0; i < 20; i++ {
		if diff := cmp.Diff(first, Compute(desired, current, inFlight, 500, 2500, Migration{})); diff != "" {
			t.Fatalf("run %d differs (-first +this):\n%s", i, diff)
		}
	}
	checkInvariants(t, desired, current, inFlight, 500, 2500, first)
}

func TestBatchesDoNotAlias(t *testing.T) {
	p := Compute(set(eps(0, 4)...), nil, nil, 2, 100, Migration{})
	first := p.Attach[0].Endpoints
	_ = append(first, ep(99))
	if diff := cmp.Diff(eps(2, 4), p.Attach[1].Endpoints); diff != "" {
		t.Errorf("appending to batch 0 changed batch 1 (-want +got):\n%s", diff)
	}
}

func TestEmpty(t *testing.T) {
	tests := []struct {
		name string
		p    Plan
		want bool
	}{
		{name: "zero", p: Plan{}, want: true},
		{name: "held only", p: Plan{HeldInFlight: 3, OverCapacity: 1}, want: true},
		{name: "attach", p: Plan{Attach: []Batch{{Op: Attach}}}, want: false},
		{name: "detach", p: Plan{Detach: []Batch{{Op: Detach}}}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Empty(); got != tc.want {
				t.Errorf("Empty() = %v, want %v", got, tc.want)
			}
		})
	}
}

// BenchmarkCompute: 100k desired, 100k current, 10% of each differing, 1% in flight.
func BenchmarkCompute(b *testing.B) {
	const n = 100000
	desired := set(eps(0, n)...)
	current := set(eps(n/10, n+n/10)...)
	inFlight := set(eps(0, n/100)...)
	b.ReportAllocs()
	for b.Loop() {
		p := Compute(desired, current, inFlight, DefaultBatchSize, n*2, Migration{})
		if len(p.Attach) == 0 || len(p.Detach) == 0 {
			b.Fatal("empty plan")
		}
	}
}
