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
}

// Empty reports whether the plan makes no calls.
func (p Plan) Empty() bool { return len(p.Attach) == 0 && len(p.Detach) == 0 }

// Compute returns the calls that take one NEG from current to desired; see the package doc for the
// decision table. inFlight holds endpoints with an attach or detach call outstanding; they are left
// alone this round. batchSize <= 0 means DefaultBatchSize; capacity <= 0 means DefaultCapacity.
// Nil sets are empty.
func Compute(desired, current neg.EndpointSet, inFlight neg.EndpointSet, batchSize, capacity int) Plan {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	var p Plan
	var attach, detach []neg.Endpoint
	for e := range desired {
		if current.Has(e) {
			continue
		}
		if inFlight.Has(e) {
			p.HeldInFlight++
			continue
		}
		attach = append(attach, e)
	}
	for e := range current {
		if desired.Has(e) {
			continue
		}
		if inFlight.Has(e) {
			p.HeldInFlight++
			continue
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
	slices.SortFunc(detach, neg.Compare)

	room := max(capacity-(len(current)-len(detach)+pendingAttach), 0)
	if len(attach) > room {
		p.OverCapacity = len(attach) - room
		attach = attach[:room]
	}
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
