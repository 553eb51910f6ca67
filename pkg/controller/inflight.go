package controller

import (
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// opKind is the kind of a mutating endpoint operation.
type opKind int

const (
	opAttach opKind = iota
	opDetach
)

func (k opKind) String() string {
	if k == opAttach {
		return "attach"
	}
	return "detach"
}

// negState is what the controller knows about one zonal NEG it manages: the endpoints it
// believes are attached, the endpoints with an operation in flight, and the NEG's retry state.
// All fields are guarded by negStates.mu.
type negState struct {
	// current is the attached set as last listed plus the effect of our own successful calls
	// since; nil means unknown (never listed since start, or a call on the NEG failed or had an
	// uncertain outcome), which makes the next sync list the NEG.
	current neg.EndpointSet
	// listedAt is when current was last replaced by a listing.
	listedAt time.Time
	// owner is the Service whose sync last made current known (listed or created the NEG).
	owner cache.ObjectName
	// changedSeq is the negStates sequence number of the last listing, creation or call that
	// finished on the NEG: a NEG listing (ListNEGs) that started at a later sequence number
	// saw the NEG after every change the controller knows of (see sizeDrift).
	changedSeq uint64
	// listing is true while a listing is running; completions that happen meanwhile are also
	// recorded in journal and replayed on top of the listing's result.
	listing bool
	journal []completion
	// uncertainDuringList is set when a call failed while a listing ran: the listing may
	// predate the call's partial effect, so its result is not trusted.
	uncertainDuringList bool
	// inFlight holds every endpoint with an attach or detach in flight. The plan never emits
	// an endpoint found here, so no duplicate call ever leaves the controller.
	inFlight map[neg.Endpoint]opKind
	// failures counts consecutive failed calls on the NEG; retryAt is when the NEG may be
	// mutated again after the last failure.
	failures int
	retryAt  time.Time
	// invalid holds endpoints GCE rejected as invalid, with the time until which they are not
	// retried.
	invalid map[neg.Endpoint]time.Time
	// pacers pace attach (index opAttach) and detach calls; see coalesce.
	pacers [2]callPacer
	// deleteFailures counts consecutive refused deletes of a NEG no longer wanted (a backend
	// service still uses it); deleteRetryAt is when the delete is tried again. Unlike retryAt
	// it does not hold back the NEG's endpoint calls: an in-use NEG keeps being synced.
	deleteFailures int
	deleteRetryAt  time.Time
}

// completion is the outcome of one finished call on a NEG.
type completion struct {
	kind      opKind
	succeeded []neg.Endpoint
}

// negStates is the per-NEG table shared by syncs and the goroutines running calls.
type negStates struct {
	mu sync.Mutex
	m  map[neg.Ref]*negState
	// seq numbers the changes of known state (listings, creations, finished calls); see
	// negState.changedSeq.
	seq uint64
}

func newNEGStates() *negStates { return &negStates{m: map[neg.Ref]*negState{}} }

// get returns the state of ref, creating it. Callers hold mu.
func (s *negStates) get(ref neg.Ref) *negState {
	st := s.m[ref]
	if st == nil {
		st = &negState{inFlight: map[neg.Endpoint]opKind{}, invalid: map[neg.Endpoint]time.Time{}}
		s.m[ref] = st
	}
	return st
}

// snapshot is a consistent copy of the parts of a negState a sync plans from.
type snapshot struct {
	current  neg.EndpointSet // nil = unknown
	listedAt time.Time
	inFlight neg.EndpointSet
	// attaching and detaching report whether any attach, or detach, call is in flight.
	attaching, detaching bool
	// pacers are the NEG's attach and detach pacers.
	pacers        [2]callPacer
	retryAt       time.Time
	deleteRetryAt time.Time
	invalid       neg.EndpointSet
}

// snapshot copies the state of ref; invalid holds only the endpoints still excluded at now.
func (s *negStates) snapshot(ref neg.Ref, now time.Time) snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	out := snapshot{listedAt: st.listedAt, retryAt: st.retryAt, deleteRetryAt: st.deleteRetryAt, pacers: st.pacers,
		inFlight: neg.NewEndpointSet(), invalid: neg.NewEndpointSet()}
	if st.current != nil {
		out.current = make(neg.EndpointSet, len(st.current))
		for e := range st.current {
			out.current.Insert(e)
		}
	}
	for e, kind := range st.inFlight {
		out.inFlight.Insert(e)
		if kind == opAttach {
			out.attaching = true
		} else {
			out.detaching = true
		}
	}
	for e, until := range st.invalid {
		if now.Before(until) {
			out.invalid.Insert(e)
		} else {
			delete(st.invalid, e)
		}
	}
	return out
}

// beginList marks a listing of ref, for the Service owner, as started.
func (s *negStates) beginList(ref neg.Ref, owner cache.ObjectName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	st.owner = owner
	st.listing = true
	st.journal = nil
	st.uncertainDuringList = false
}

// endList installs a listing's result (nil on failure, which leaves current unknown) and
// replays the calls that completed while the listing ran.
func (s *negStates) endList(ref neg.Ref, listed neg.EndpointSet, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	st.listing = false
	st.changedSeq = s.next()
	journal := st.journal
	st.journal = nil
	if listed == nil || st.uncertainDuringList {
		st.current = nil
		return
	}
	st.current = listed
	st.listedAt = now
	for _, c := range journal {
		applyCompletion(st.current, c)
	}
}

// tryStart marks eps in flight for ref and returns true, unless one of them is already in
// flight (then nothing is marked and it returns false). It is the last guard against a
// duplicate call.
func (s *negStates) tryStart(ref neg.Ref, kind opKind, eps []neg.Endpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	for _, e := range eps {
		if _, busy := st.inFlight[e]; busy {
			return false
		}
	}
	for _, e := range eps {
		st.inFlight[e] = kind
	}
	return true
}

// charge records that calls of kind (one plan's, however many batches) started on ref at now.
func (s *negStates) charge(ref neg.Ref, kind opKind, now time.Time, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.get(ref).pacers[kind].take(now, interval)
}

// finish records the outcome of one call on ref: eps leave the in-flight table; succeeded
// endpoints update current; invalid ones are excluded until invalidUntil; failed marks the
// current set unknown and schedules the NEG's retry at now+delay(failures).
func (s *negStates) finish(ref neg.Ref, kind opKind, eps, succeeded, invalid []neg.Endpoint,
	failed bool, invalidUntil time.Time, retryAt func(failures int) time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	st.changedSeq = s.next()
	for _, e := range eps {
		delete(st.inFlight, e)
	}
	for _, e := range invalid {
		st.invalid[e] = invalidUntil
	}
	c := completion{kind: kind, succeeded: succeeded}
	if st.current != nil {
		applyCompletion(st.current, c)
	}
	if st.listing {
		st.journal = append(st.journal, c)
	}
	if failed {
		st.current = nil
		st.uncertainDuringList = st.listing
		st.failures++
		st.retryAt = retryAt(st.failures)
		return
	}
	if len(succeeded) > 0 {
		st.failures = 0
		st.retryAt = time.Time{}
	}
}

// setCurrent installs a known current set (e.g. empty for a NEG just created) for the Service
// owner.
func (s *negStates) setCurrent(ref neg.Ref, owner cache.ObjectName, set neg.EndpointSet, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	st.current = set
	st.listedAt = now
	st.owner = owner
	st.changedSeq = s.next()
}

// sequence returns the current sequence number: pass it to checkSizes for a NEG listing
// started now.
func (s *negStates) sequence() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq
}

// next advances the sequence and returns the new number. Callers hold mu.
func (s *negStates) next() uint64 {
	s.seq++
	return s.seq
}

// forget drops the state of a NEG that no longer exists, unless calls are still in flight.
func (s *negStates) forget(ref neg.Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[ref]; st != nil && len(st.inFlight) == 0 {
		delete(s.m, ref)
	}
}

// failNEG records a failure on ref that did not come from an endpoint call (e.g. listing).
func (s *negStates) failNEG(ref neg.Ref, retryAt func(failures int) time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	st.current = nil
	st.failures++
	st.retryAt = retryAt(st.failures)
	return st.retryAt
}

// deferDelete records that deleting ref was refused because a backend service uses the NEG,
// and returns when to try again.
func (s *negStates) deferDelete(ref neg.Ref, retryAt func(failures int) time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.get(ref)
	st.deleteFailures++
	st.deleteRetryAt = retryAt(st.deleteFailures)
	return st.deleteRetryAt
}

func applyCompletion(set neg.EndpointSet, c completion) {
	for _, e := range c.succeeded {
		if c.kind == opAttach {
			set.Insert(e)
		} else {
			delete(set, e)
		}
	}
}
