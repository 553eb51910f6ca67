package plan

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// v4 and dual are pod i as an IPv4-only and as a dual-stack endpoint: the same pod before and
// after a single → dual-stack switch.
func v4(i int) neg.Endpoint { return ep(i) }
func dual(i int) neg.Endpoint {
	e := ep(i)
	e.IPv6 = fmt.Sprintf("fd00::%x", i+1)
	return e
}

func duals(from, to int) []neg.Endpoint {
	var out []neg.Endpoint
	for i := from; i < to; i++ {
		out = append(out, dual(i))
	}
	return out
}

func TestConflicts(t *testing.T) {
	v6only := neg.Endpoint{Instance: "vm", IPv6: dual(1).IPv6, Port: 8080}
	other := dual(1)
	other.Instance = "vm2"
	otherPort := dual(1)
	otherPort.Port = 9090
	tests := []struct {
		a, b neg.Endpoint
		want bool
	}{
		{v4(1), dual(1), true},    // shares the IPv4 address
		{dual(1), v6only, true},   // shares the IPv6 address
		{v4(1), v6only, false},    // no address in common
		{v4(1), v4(1), false},     // the same endpoint
		{v4(1), dual(2), false},   // another pod
		{v4(1), other, false},     // another instance
		{v4(1), otherPort, false}, // another port
		{dual(1), dual(1), false}, // the same endpoint
		{v6only, v6only, false},   // the same endpoint
		{dual(1), otherPort, false},
	}
	for _, tc := range tests {
		if got := Conflicts(tc.a, tc.b); got != tc.want {
			t.Errorf("Conflicts(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := Conflicts(tc.b, tc.a); got != tc.want {
			t.Errorf("Conflicts(%v, %v) = %v, want %v (symmetric)", tc.b, tc.a, got, tc.want)
		}
	}
}

// TestComputeMigration: endpoints that change address family leave in steps of
// ceil(Fraction × |current|), only while the NEG is otherwise at rest; their successors attach
// once they are gone.
func TestComputeMigration(t *testing.T) {
	var v4s []neg.Endpoint
	for i := range 20 {
		v4s = append(v4s, v4(i))
	}
	tests := []struct {
		name                       string
		desired, current, inFlight []neg.Endpoint
		mig                        Migration
		want                       Plan
	}{
		{name: "first step: 10% of 20 predecessors leave, successors wait",
			desired: duals(0, 20), current: v4s,
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{v4(0), v4(1)}), MigrationStep: 2, Migrating: 38}},
		{name: "paused: nothing leaves",
			desired: duals(0, 20), current: v4s, mig: Migration{Paused: true},
			want: Plan{Migrating: 40}},
		{name: "step detach in flight: held behind it",
			desired: duals(0, 20), current: v4s, inFlight: []neg.Endpoint{v4(0), v4(1)},
			want: Plan{HeldInFlight: 2, Migrating: 38}},
		{name: "after a step: successors attach, no new step until they land",
			desired: duals(0, 20), current: v4s[2:],
			want: Plan{Attach: batches(Attach, 500, duals(0, 2)), Migrating: 36}},
		{name: "successors attaching: no new step",
			desired: duals(0, 20), current: v4s[2:], inFlight: duals(0, 2),
			want: Plan{HeldInFlight: 2, Migrating: 36}},
		{name: "successors attached: next step",
			desired: duals(0, 20), current: append(v4s[2:], duals(0, 2)...),
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{v4(10), v4(11)}), MigrationStep: 2, Migrating: 34}}, // lowest in neg.Compare order
		{name: "a new pod's attach goes first, the step waits",
			desired: append(duals(0, 20), dual(30)), current: v4s,
			want: Plan{Attach: batches(Attach, 500, []neg.Endpoint{dual(30)}), Migrating: 40}},
		{name: "a removed pod's detach does not wait for migration",
			desired: duals(0, 19), current: v4s,
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{v4(0), v4(1), v4(19)}), MigrationStep: 2, Migrating: 36}},
		{name: "a small NEG migrates one endpoint per step",
			desired: duals(0, 3), current: v4s[:3],
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{v4(0)}), MigrationStep: 1, Migrating: 5}},
		{name: "fraction 0.5",
			desired: duals(0, 20), current: v4s, mig: Migration{Fraction: 0.5},
			want: Plan{Detach: batches(Detach, 500, append([]neg.Endpoint{v4(0), v4(1)}, v4s[10:18]...)), MigrationStep: 10, Migrating: 30}},
		{name: "switched to dual-stack, IPv6 addresses not known yet: current endpoints stay",
			desired: nil, current: v4s[:4], mig: Migration{Waiting: set(v4s[:4]...)},
			want: Plan{}},
		{name: "waiting pods keep theirs, a removed pod still leaves, nothing attached for waiting pods",
			desired: nil, current: v4s[:4], mig: Migration{Waiting: set(v4(0), v4(1), v4(9))},
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{v4(2), v4(3)})}},
		{name: "waiting matched by address: a dual-stack endpoint stays for a pod waiting for IPv6",
			desired: nil, current: duals(0, 2), mig: Migration{Waiting: set(v4(0))},
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{dual(1)})}},
		{name: "dual → single-stack migrates the same way",
			desired: v4s[:4], current: duals(0, 4),
			want: Plan{Detach: batches(Detach, 500, []neg.Endpoint{dual(0)}), MigrationStep: 1, Migrating: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(set(tc.desired...), set(tc.current...), set(tc.inFlight...), 500, 10000, tc.mig)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Compute (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMigrationConverges runs a whole single → dual-stack migration step by step, every call
// succeeding at once: it ends with exactly the dual-stack endpoints, never holds fewer than 90%
// of the pods at any point, and takes ceil(1/Fraction) steps.
func TestMigrationConverges(t *testing.T) {
	const n = 50
	current := set(eps(0, n)...)
	desired := set(duals(0, n)...)
	steps := 0
	for round := 0; round < 100; round++ {
		p := Compute(desired, current, nil, 500, 10000, Migration{})
		if p.Empty() {
			break
		}
		if p.MigrationStep > 0 {
			steps++
		}
		for _, b := range p.Detach {
			for _, e := range b.Endpoints {
				delete(current, e)
			}
		}
		if current.Len() < n*9/10 {
			t.Fatalf("round %d: %d of %d pods in the NEG", round, current.Len(), n)
		}
		for _, b := range p.Attach {
			current.Insert(b.Endpoints...)
		}
	}
	if !current.Equal(desired) {
		t.Fatalf("migration ended with %d endpoints, want the %d dual-stack ones", current.Len(), n)
	}
	if steps != 10 {
		t.Errorf("migration took %d steps, want 10", steps)
	}
}
