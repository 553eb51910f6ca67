package plan

import (
	"math"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Dual-stack migration: switching a Service between single-stack and dual-stack changes the
// identity of every pod's endpoint (instance, IPv4 address, port → the same plus an IPv6
// address, or back). GCE does not hold two endpoints of one instance and port that share an
// address (fakegce models it so; GKE's dual-stack migrator detaches the old endpoint before
// attaching the new one, which implies the same; the exact rule is [unverified]), so the old
// endpoint must be detached before its successor can be attached — and detaching them all at
// once would empty the NEG for an operation latency plus the time health checks take to pass
// the new endpoints. So Compute migrates in steps:
//
//	endpoint                                                  action
//	successor (desired, conflicts with a current or in-flight) held, counted in Migrating
//	predecessor (current, not desired, conflicts with desired) detached in a step, else held
//	                                                          and counted in Migrating
//	current, not desired, shares an address with Waiting     kept (its pod waits for its
//	                                                          other address)
//
// A step detaches at most ceil(Fraction × |current|) predecessors (at least one; the lowest in
// neg.Compare order), and only when the NEG is otherwise at rest: no attach in flight and none
// planned (so the previous step's successors are attached, and new pods go first), and the
// caller's pause after the previous step is over (Migration.Paused). When a step's detach
// finishes, the successors no longer conflict and the next plan attaches them.
//
// GKE's migrator (kubernetes/ingress-gce pkg/neg/syncers/dualstack) moves 10% of the
// endpoints of one zone per step and waits a fixed minute between steps; here every zonal NEG
// migrates on its own, and a step waits for the previous step's successors to be attached
// plus a pause (negsync's MigrationPause, 10 s by default: about two health-check intervals,
// for the new endpoints to turn healthy), so a migration takes seconds per step, not minutes,
// while at most one step's endpoints are out of the load balancer at a time.

// DefaultMigrationFraction is the share of a NEG's endpoints one migration step moves.
const DefaultMigrationFraction = 0.1

// Migration is the caller's part of the migration rule.
type Migration struct {
	// Waiting are one-address endpoints of dual-stack pods waiting for their other address
	// (endpoints.Result.Waiting): not desired, but a current endpoint sharing an address with
	// one stays (neither detached nor counted), so a Service switched to dual-stack keeps its
	// endpoints until the pods' IPv6 addresses are known, and then migrates in steps.
	Waiting neg.EndpointSet
	// Paused holds migration steps: the pause after the previous step is not over.
	Paused bool
	// Fraction is the share of the NEG's endpoints one step may migrate (<= 0:
	// DefaultMigrationFraction).
	Fraction float64
}

// Conflicts reports whether a and b are different endpoints of one instance and port that share
// their IPv4 or their IPv6 address: GCE holds only one of them at a time.
func Conflicts(a, b neg.Endpoint) bool {
	if a == b || a.Instance != b.Instance || a.Port != b.Port {
		return false
	}
	return a.IP != "" && a.IP == b.IP || a.IPv6 != "" && a.IPv6 == b.IPv6
}

// addrKey is one address of an endpoint: the unit GCE refuses to hold twice.
type addrKey struct {
	instance string
	port     int64
	v6       bool
	addr     string
}

// addrIndex finds, by address, the endpoints of a set.
type addrIndex map[addrKey][]neg.Endpoint

func (x addrIndex) add(e neg.Endpoint) {
	for _, k := range addrKeys(e) {
		x[k] = append(x[k], e)
	}
}

// conflicting reports whether the index holds an endpoint that Conflicts with e.
func (x addrIndex) conflicting(e neg.Endpoint) bool {
	for _, k := range addrKeys(e) {
		for _, o := range x[k] {
			if o != e {
				return true
			}
		}
	}
	return false
}

// sharing reports whether the index holds an endpoint that shares an address with e (e itself
// included).
func (x addrIndex) sharing(e neg.Endpoint) bool {
	for _, k := range addrKeys(e) {
		if len(x[k]) > 0 {
			return true
		}
	}
	return false
}

// anyIPv6 reports whether an endpoint of the sets has an IPv6 address.
func anyIPv6(sets ...neg.EndpointSet) bool {
	for _, set := range sets {
		for e := range set {
			if e.IPv6 != "" {
				return true
			}
		}
	}
	return false
}

func addrKeys(e neg.Endpoint) []addrKey {
	keys := make([]addrKey, 0, 2)
	if e.IP != "" {
		keys = append(keys, addrKey{instance: e.Instance, port: e.Port, addr: e.IP})
	}
	if e.IPv6 != "" {
		keys = append(keys, addrKey{instance: e.Instance, port: e.Port, v6: true, addr: e.IPv6})
	}
	return keys
}

// stepSize is how many predecessors one migration step detaches from a NEG holding current
// endpoints.
func (m Migration) stepSize(current int) int {
	f := m.Fraction
	if f <= 0 {
		f = DefaultMigrationFraction
	}
	return max(int(math.Ceil(f*float64(current))), 1)
}
