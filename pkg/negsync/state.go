package negsync

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// negState is everything known about one zonal NEG. All fields are guarded by mu.
type negState struct {
	mu sync.Mutex

	// current is the attached set as last listed plus the effect of our own successful calls
	// since; nil means unknown (never listed since start, or a call on the NEG failed or had an
	// uncertain outcome, or drift was found), which makes the next Refresh list the NEG.
	current neg.EndpointSet
	// listedAt is when current was last replaced by a listing (or the NEG was created).
	listedAt time.Time
	// everListed is true once a listing or creation made current known: the first listing is
	// urgent (the Service waits for it), later ones are not.
	everListed bool
	// owner is the Service whose sync last made current known (listed or created the NEG).
	owner cache.ObjectName
	// changedSeq is the Syncer sequence number of the last listing, creation or call that
	// finished on the NEG: a NEG listing that started at a later sequence number saw the NEG
	// after every change the controller knows of (see sizeDrift).
	changedSeq uint64
	// listing is true while a listing is running; completions that happen meanwhile are also
	// recorded in journal and replayed on top of the listing's result.
	listing bool
	journal []completion
	// uncertainDuringList is set when a call failed while a listing ran: the listing may
	// predate the call's partial effect, so its result is not trusted.
	uncertainDuringList bool
	// inFlight holds every endpoint with an attach or detach in flight. Apply never plans an
	// endpoint found here, so no duplicate call ever leaves the controller. nil while empty: a
	// map keeps its storage after deletes, and most NEGs are idle most of the time.
	inFlight map[neg.Endpoint]plan.Op
	// attaching and detaching count the calls in flight per direction.
	attaching, detaching int
	// failures counts consecutive failed calls on the NEG; retryAt is when the NEG may be
	// mutated again after the last failure.
	failures int
	retryAt  time.Time
	// failure is the last failure reported for the NEG (Fail, Note), for the status writers,
	// until ClearFailure.
	failure *Failure
	// invalid holds endpoints GCE rejected as invalid, with the time until which they are not
	// retried; nil while empty, like inFlight.
	invalid map[neg.Endpoint]time.Time
	// attach and detach are the pacing state of each direction (plan.Hold).
	attach, detach flow
	// deleteFailures counts consecutive refused deletes of a NEG no longer wanted (a backend
	// service still uses it); deleteRetryAt is when the delete is tried again. Unlike retryAt
	// it does not hold back the NEG's endpoint calls: an in-use NEG keeps being synced.
	deleteFailures int
	deleteRetryAt  time.Time
	// migrationStepAt is when the NEG's last dual-stack migration step (plan.Migration)
	// finished; the next waits for Config.MigrationPause after it.
	migrationStepAt time.Time
}

func newNEGState() *negState {
	return &negState{}
}

// flow is the pacing state of one direction of a NEG.
type flow struct {
	pacer plan.Pacer
	// pendingSig is the plan.Signature of the endpoints the direction's calls would carry at
	// the last Apply, and pendingSince when it last changed.
	pendingSig   uint64
	pendingSince time.Time
}

// observe records the direction's pending batches at now and returns its plan.Flow.
func (f *flow) observe(batches []plan.Batch, inFlight bool, now time.Time) plan.Flow {
	if sig := plan.Signature(batches); sig != f.pendingSig || f.pendingSince.IsZero() {
		f.pendingSig, f.pendingSince = sig, now
	}
	return plan.Flow{InFlight: inFlight, Pacer: f.pacer, PendingSince: f.pendingSince}
}

// Failure is the last failure recorded for a NEG.
type Failure struct {
	// Owner is the Service whose sync recorded it.
	Owner cache.ObjectName
	// Reason is the event reason (e.g. CreateNEGFailed, NEGInUse); Message its message.
	Reason, Message string
}

// completion is the outcome of one finished call on a NEG.
type completion struct {
	op        plan.Op
	succeeded []neg.Endpoint
}

func (c completion) applyTo(set neg.EndpointSet) {
	for _, e := range c.succeeded {
		if c.op == plan.Attach {
			set.Insert(e)
		} else {
			delete(set, e)
		}
	}
}

// excluded returns the endpoints excluded as invalid at now, dropping expired entries.
// Callers hold mu.
func (st *negState) excluded(now time.Time) neg.EndpointSet {
	out := neg.NewEndpointSet()
	for e, until := range st.invalid {
		if now.Before(until) {
			out.Insert(e)
		} else {
			delete(st.invalid, e)
		}
	}
	if len(st.invalid) == 0 {
		st.invalid = nil
	}
	return out
}

// inFlightSet returns the endpoints with a call in flight. Callers hold mu.
func (st *negState) inFlightSet() neg.EndpointSet {
	out := make(neg.EndpointSet, len(st.inFlight))
	for e := range st.inFlight {
		out.Insert(e)
	}
	return out
}

// fail records a failed call or listing: current unknown, one more failure, retry at
// retryAt(failures). Callers hold mu.
func (st *negState) fail(retryAt func(failures int) time.Time) time.Time {
	st.current = nil
	st.failures++
	st.retryAt = retryAt(st.failures)
	return st.retryAt
}
