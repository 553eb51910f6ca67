package negsync

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// Cloud is what a Syncer needs of GCE: the endpoint calls of one zonal NEG. gce.Cloud
// implements it.
type Cloud interface {
	ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]gce.EndpointHealth, error)
	AttachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error
	DetachNetworkEndpoints(ctx context.Context, zone, name string, eps []neg.Endpoint) error
}

// Defaults for the zero values of Config.
const (
	DefaultCallInterval = time.Second
	DefaultInvalidRetry = 10 * time.Minute
	DefaultVerifyPeriod = time.Hour
	// DefaultMigrationPause is the pause after a dual-stack migration step (plan.Migration):
	// about two intervals of a default health check (5 s), for the new endpoints to turn
	// healthy before more old ones leave.
	DefaultMigrationPause = 10 * time.Second
	maxVerifyRequeue      = 24 * time.Hour
	defaultMaxSplitCalls  = 64
)

// Config is everything New needs.
type Config struct {
	// Cloud makes the calls. Required.
	Cloud Cloud
	// Clock drives retry times, pacing and verifies; default the real clock.
	Clock clock.Clock
	// Backoff is the retry policy of failed calls.
	Backoff backoff.Policy
	// Jitter spreads retry delays; default backoff.Jitter.
	Jitter func(time.Duration) time.Duration
	// CallInterval paces each NEG's calls of one direction: one per interval sustained, a
	// burst of plan.PacerBurst; Quiet lets pending changes out ahead of the pacer once they
	// stopped changing for that long, unless BudgetShort (see plan.Hold). Default
	// plan.DefaultQuiet.
	CallInterval time.Duration
	Quiet        time.Duration
	// BudgetShort reports whether mutating calls already wait for GCE's shared budget; nil
	// means never.
	BudgetShort func() bool
	// VerifyPeriod is how old a NEG's known endpoints may get before Refresh lists it again.
	VerifyPeriod time.Duration
	// InvalidEndpointRetry is how long an endpoint GCE rejected as invalid is left out.
	InvalidEndpointRetry time.Duration
	// BatchSize and Capacity default to GCE's limits (500 per call, 10,000 per NEG).
	BatchSize, Capacity int
	// MigrationPause is how long a NEG waits after a dual-stack migration step before the next
	// (0: DefaultMigrationPause, negative: no pause); MigrationFraction the share of its
	// endpoints one step moves (0: plan.DefaultMigrationFraction). See plan.Migration.
	MigrationPause    time.Duration
	MigrationFraction float64
	// OnDone is told about every finished group of calls; nil ignores them.
	OnDone func(Done)
}

// Syncer keeps the endpoints of zonal NEGs in step with what the controller wants. Create it
// with New; it is safe for concurrent use.
type Syncer struct {
	cfg Config

	mu   sync.Mutex
	negs map[neg.Ref]*negState

	// seq numbers the changes of known state (listings, creations, finished calls); see
	// negState.changedSeq.
	seq atomic.Uint64
	// calls counts the calls in flight; wg waits for them.
	calls atomic.Int64
	wg    sync.WaitGroup
}

// New returns a Syncer.
func New(cfg Config) (*Syncer, error) {
	if cfg.Cloud == nil {
		return nil, errors.New("negsync: a Cloud is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Jitter == nil {
		cfg.Jitter = backoff.Jitter
	}
	cfg.Backoff = cfg.Backoff.WithDefaults()
	if cfg.CallInterval <= 0 {
		cfg.CallInterval = DefaultCallInterval
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = plan.DefaultQuiet
	}
	if cfg.VerifyPeriod <= 0 {
		cfg.VerifyPeriod = DefaultVerifyPeriod
	}
	if cfg.InvalidEndpointRetry <= 0 {
		cfg.InvalidEndpointRetry = DefaultInvalidRetry
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = plan.DefaultBatchSize
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = plan.DefaultCapacity
	}
	if cfg.MigrationPause == 0 {
		cfg.MigrationPause = DefaultMigrationPause
	}
	return &Syncer{cfg: cfg, negs: map[neg.Ref]*negState{}}, nil
}

// state returns the state of ref, creating it.
func (s *Syncer) state(ref neg.Ref) *negState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.negs[ref]
	if st == nil {
		st = newNEGState()
		s.negs[ref] = st
	}
	return st
}

// lookup returns the state of ref, or nil.
func (s *Syncer) lookup(ref neg.Ref) *negState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.negs[ref]
}

// retryAt returns the function computing when a NEG may be retried after its n-th
// consecutive failure with err.
func (s *Syncer) retryAt(err error) func(failures int) time.Time {
	return func(failures int) time.Time {
		return s.cfg.Clock.Now().Add(s.cfg.Jitter(s.cfg.Backoff.ErrorDelay(failures, err)))
	}
}

// RetryAt returns when the NEG may be called again after its last failure; zero (or a time
// past) when it may be called now.
func (s *Syncer) RetryAt(ref neg.Ref) time.Time {
	st := s.lookup(ref)
	if st == nil {
		return time.Time{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.retryAt
}

// Refresh makes the current endpoints of ref known for the Service owner: it lists the NEG
// when they are unknown or its verify is due. It returns when the next verify is due (zero when
// VerifyPeriod is too long for a sync to schedule it: verifies then come with events). An
// error leaves the endpoints unknown; the caller records it with Fail (or, for NotFound,
// Forget) — Refresh does not count it as a failure itself.
//
// A listing after a failure waits for GCE's budget as normal; the first listing (start,
// adoption) as urgent, since the Service waits for it; a periodic verify as background.
func (s *Syncer) Refresh(ctx context.Context, ref neg.Ref, owner cache.ObjectName) (verifyAt time.Time, err error) {
	now := s.cfg.Clock.Now()
	st := s.state(ref)
	st.mu.Lock()
	listedAt, known, ever := st.listedAt, st.current != nil, st.everListed
	if known && now.Before(s.verifyDue(ref, listedAt)) {
		st.mu.Unlock()
		return s.nextVerify(ref, listedAt), nil
	}
	st.owner = owner
	st.listing = true
	st.journal = nil
	st.uncertainDuringList = false
	st.mu.Unlock()

	prio := gce.PriorityNormal
	switch {
	case known:
		prio = gce.PriorityBackground
	case !ever:
		prio = gce.PriorityUrgent
	}
	eps, err := s.cfg.Cloud.ListNetworkEndpoints(gce.WithTenant(gce.WithPriority(ctx, prio), owner.String()), ref.Zone, ref.Name, false)
	var listed neg.EndpointSet
	if err == nil {
		listed = make(neg.EndpointSet, len(eps))
		for _, e := range eps {
			listed.Insert(e.Endpoint)
		}
	}
	now = s.cfg.Clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.listing = false
	st.changedSeq = s.seq.Add(1)
	journal := st.journal
	st.journal = nil
	if err != nil || st.uncertainDuringList {
		st.current = nil
		return time.Time{}, err
	}
	st.current = listed
	st.listedAt = now
	st.everListed = true
	for _, c := range journal {
		c.applyTo(st.current)
	}
	return s.nextVerify(ref, now), nil
}

// verifyDue returns when the endpoints of ref, listed at listedAt, must be listed again:
// between half of and the whole VerifyPeriod later, at a fraction fixed per NEG (a hash of its
// zone and name), so the re-lists of many NEGs spread over the period instead of all coming
// at once.
func (s *Syncer) verifyDue(ref neg.Ref, listedAt time.Time) time.Time {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ref.String()))
	frac := 0.5 + 0.5*float64(h.Sum32())/float64(math.MaxUint32)
	return listedAt.Add(time.Duration(float64(s.cfg.VerifyPeriod) * frac))
}

// nextVerify is verifyDue, or zero when VerifyPeriod is beyond what a sync schedules itself.
func (s *Syncer) nextVerify(ref neg.Ref, listedAt time.Time) time.Time {
	if s.cfg.VerifyPeriod > maxVerifyRequeue {
		return time.Time{}
	}
	return s.verifyDue(ref, listedAt)
}

// Created records that the controller created ref for the Service owner: known empty.
func (s *Syncer) Created(ref neg.Ref, owner cache.ObjectName) {
	st := s.state(ref)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.current = neg.NewEndpointSet()
	st.listedAt = s.cfg.Clock.Now()
	st.everListed = true
	st.owner = owner
	st.changedSeq = s.seq.Add(1)
}

// Fail records a failed call on ref other than Apply's (a listing, an insert or delete) for the
// Service owner, with the event reason and message the status writers report: the NEG's
// endpoints become unknown and it backs off. It returns when the NEG may be retried.
func (s *Syncer) Fail(ref neg.Ref, owner cache.ObjectName, err error, reason, msg string) time.Time {
	st := s.state(ref)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failure = &Failure{Owner: owner, Reason: reason, Message: msg}
	return st.fail(s.retryAt(err))
}

// Note records a problem of ref that is not a failed call (a NEG kept because a backend
// service uses it) for the status writers, until ClearFailure.
func (s *Syncer) Note(ref neg.Ref, owner cache.ObjectName, reason, msg string) {
	st := s.state(ref)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failure = &Failure{Owner: owner, Reason: reason, Message: msg}
}

// Failure returns the last failure recorded for ref by Fail or Note, until ClearFailure.
func (s *Syncer) Failure(ref neg.Ref) (Failure, bool) {
	st := s.lookup(ref)
	if st == nil {
		return Failure{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.failure == nil {
		return Failure{}, false
	}
	return *st.failure, true
}

// ClearFailure forgets the failure recorded for ref.
func (s *Syncer) ClearFailure(ref neg.Ref) {
	if st := s.lookup(ref); st != nil {
		st.mu.Lock()
		st.failure = nil
		st.mu.Unlock()
	}
}

// ClearFailures forgets every failure the Service owner recorded.
func (s *Syncer) ClearFailures(owner cache.ObjectName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.negs {
		st.mu.Lock()
		if st.failure != nil && st.failure.Owner == owner {
			st.failure = nil
		}
		st.mu.Unlock()
	}
}

// DeferDelete records that deleting ref was refused (err: a backend service uses the NEG) and
// returns when to try again: the retry-later backoff, capped at maxDelay.
func (s *Syncer) DeferDelete(ref neg.Ref, err error, maxDelay time.Duration) time.Time {
	st := s.state(ref)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.deleteFailures++
	d := min(s.cfg.Jitter(s.cfg.Backoff.ErrorDelay(st.deleteFailures, err)), maxDelay)
	st.deleteRetryAt = s.cfg.Clock.Now().Add(d)
	return st.deleteRetryAt
}

// DeleteRetryAt returns when a refused delete of ref may be tried again (zero: now).
func (s *Syncer) DeleteRetryAt(ref neg.Ref) time.Time {
	st := s.lookup(ref)
	if st == nil {
		return time.Time{}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.deleteRetryAt
}

// Forget drops the state of a NEG that no longer exists, unless calls are still in flight on
// it (their completion drops it).
func (s *Syncer) Forget(ref neg.Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.negs[ref]
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.inFlight) == 0 {
		delete(s.negs, ref)
	}
}

// Attached returns the number of endpoints of every NEG whose endpoints are known.
func (s *Syncer) Attached() map[neg.Ref]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[neg.Ref]int, len(s.negs))
	for ref, st := range s.negs {
		st.mu.Lock()
		if st.current != nil {
			out[ref] = st.current.Len()
		}
		st.mu.Unlock()
	}
	return out
}

// Idle reports whether no call is in flight.
func (s *Syncer) Idle() bool { return s.calls.Load() == 0 }

// Wait returns when no call is in flight.
func (s *Syncer) Wait() { s.wg.Wait() }
