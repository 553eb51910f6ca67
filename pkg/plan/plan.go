package plan

import (
	"slices"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

const (
	// DefaultBatchSize is GCE's limit on endpoints per attach or detach call.
	DefaultBatchSize = 500
	// DefaultCapacity is GCE's limit on endpoints in one zonal GCE_VM_IP_PORT NEG.
	DefaultCapacity = 10000
)

// Op is the kind of call a Batch is for.
type Op string

// Operations.
const (
	Attach Op = "attach"
	Detach Op = "detach"
)

// Batch is the endpoints of one attach or detach call, sorted.
type Batch struct {
	Op        Op
	Endpoints []neg.Endpoint
}

// Plan is the calls that take one NEG from its current to its desired endpoints.
type Plan struct {
	// Attach and Detach are the calls to make, in order.
	Attach, Detach []Batch
	// HeldInFlight counts endpoints that need an attach or detach but have a call outstanding.
	HeldInFlight int
	// OverCapacity counts desired endpoints left unattached because the NEG is full.
	OverCapacity int
	// Migrating counts endpoints held by the dual-stack migration rule: successors waiting for
	// their predecessor to leave, and predecessors waiting for a step (see Migration).
	Migrating int
	// MigrationStep counts the predecessors this plan detaches as a migration step.
	MigrationStep int
}

// Empty reports whether the plan makes no calls.
func (p Plan) Empty() bool { return len(p.Attach) == 0 && len(p.Detach) == 0 }

// Compute returns the calls that take one NEG from current to desired; see the package doc for the
// decision table. inFlight holds endpoints with an attach or detach call outstanding; they are left
// alone this round. Endpoints that change address family migrate in steps (see Migration).
// batchSize <= 0 means DefaultBatchSize; capacity <= 0 means DefaultCapacity. Nil sets are empty.
func Compute(desired, current neg.EndpointSet, inFlight neg.EndpointSet, batchSize, capacity int, mig Migration) Plan {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	var p Plan
	// occupied indexes what GCE holds or may hold by address; wanted what the NEG should hold.
	// Endpoints without IPv6 never conflict (the same instance, IPv4 address and port is the
	// same endpoint), so single-stack NEGs — nearly all — skip building the indexes (nil
	// indexes find nothing).
	var occupied, wanted, waiting addrIndex
	if len(mig.Waiting) > 0 || anyIPv6(desired, current, inFlight) {
		occupied, wanted, waiting = addrIndex{}, addrIndex{}, addrIndex{}
		for e := range current {
			occupied.add(e)
		}
		for e := range inFlight {
			occupied.add(e)
		}
		for e := range desired {
			wanted.add(e)
		}
		for e := range mig.Waiting {
			waiting.add(e)
		}
	}
	var attach, detach, predecessors []neg.Endpoint
	for e := range desired {
		if current.Has(e) {
			continue
		}
		if inFlight.Has(e) {
			p.HeldInFlight++
			continue
		}
		if occupied.conflicting(e) {
			p.Migrating++
			continue
		}
		attach = append(attach, e)
	}
	stepInFlight := false // a predecessor's detach is in flight: the previous step runs
	for e := range current {
		if desired.Has(e) {
			continue
		}
		if inFlight.Has(e) {
			p.HeldInFlight++
			stepInFlight = stepInFlight || wanted.conflicting(e)
			continue
		}
		if wanted.conflicting(e) {
			predecessors = append(predecessors, e)
			continue
		}
		if waiting.sharing(e) {
			continue // its pod waits for its other address
		}
		detach = append(detach, e)
	}
	pendingAttach := 0
	for e := range inFlight {
		if !current.Has(e) {
			pendingAttach++
		}
	}
	slices.SortFunc(attach, neg.Compare)

	room := max(capacity-(len(current)-len(detach)+pendingAttach), 0)
	if len(attach) > room {
		p.OverCapacity = len(attach) - room
		attach = attach[:room]
	}
	if len(predecessors) > 0 {
		step := 0
		if !mig.Paused && !stepInFlight && pendingAttach == 0 && len(attach) == 0 {
			step = min(mig.stepSize(len(current)), len(predecessors))
		}
		slices.SortFunc(predecessors, neg.Compare)
		detach = append(detach, predecessors[:step]...)
		p.MigrationStep, p.Migrating = step, p.Migrating+len(predecessors)-step
	}
	slices.SortFunc(detach, neg.Compare)
	p.Attach = split(Attach, attach, batchSize)
	p.Detach = split(Detach, detach, batchSize)
	return p
}

// split cuts sorted eps into batches of at most size. Batches share eps's backing array but are
// capacity-limited, so appending to one never overwrites the next.
func split(op Op, eps []neg.Endpoint, size int) []Batch {
	if len(eps) == 0 {
		return nil
	}
	out := make([]Batch, 0, (len(eps)+size-1)/size)
	for start := 0; start < len(eps); start += size {
		end := min(start+size, len(eps))
		out = append(out, Batch{Op: op, Endpoints: eps[start:end:end]})
	}
	return out
}
