package negsync

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// Request asks Apply to bring one NEG to Desired.
type Request struct {
	Ref neg.Ref
	// Owner is the Service the NEG serves: its calls wait for GCE's budget as its tenant, and
	// Done reports name it.
	Owner cache.ObjectName
	// Desired is the endpoints the NEG must hold (nil: none).
	Desired neg.EndpointSet
	// Waiting are endpoints of dual-stack pods waiting for their other address: kept if the
	// NEG holds them, never attached (plan.Migration.Waiting).
	Waiting neg.EndpointSet
	// ChangedAt is when the EndpointSlice change being applied was observed (zero if none),
	// handed back in Done for the propagation metric.
	ChangedAt time.Time
}

// Outcome is what Apply did.
type Outcome struct {
	// Known is false when the NEG's endpoints are unknown: nothing was planned (Refresh first).
	Known bool
	// Started counts the calls started.
	Started int
	// ResumeAt, when not zero, is when Apply must be called again: calls are held by a pacer.
	// Calls held behind a call in flight need nothing: its Done re-syncs.
	ResumeAt time.Time
	// OverCapacity counts desired endpoints left out because the NEG is full.
	OverCapacity int
	// Migrating counts endpoints waiting for a dual-stack migration step (plan.Migration).
	Migrating int
}

// Done reports one finished group of calls: the batches of one direction one Apply started.
type Done struct {
	Ref       neg.Ref
	Owner     cache.ObjectName
	Op        plan.Op
	ChangedAt time.Time
	// Succeeded and Failed count endpoints; Invalid are the endpoints GCE rejected as invalid
	// (left out for InvalidEndpointRetry).
	Succeeded, Failed int
	Invalid           []neg.Endpoint
	// Err is the first error other than invalid endpoints; InvalidErr the first of those.
	Err, InvalidErr error
	// Gone is true when GCE answered NotFound: the NEG no longer exists and its state is
	// dropped.
	Gone bool
	// RetryAt is when the NEG may be called again after Err (zero without Err).
	RetryAt time.Time
}

// Apply plans the calls that take req.Ref from its current endpoints to req.Desired (less the
// endpoints excluded as invalid), holds back those plan.Hold says must wait, and starts the
// others in the background on ctx. The planning and the marking of endpoints in flight happen
// under the NEG's lock, so concurrent Applies never send a call twice. A NEG in backoff after
// a failure is not touched (check RetryAt first).
func (s *Syncer) Apply(ctx context.Context, req Request) Outcome {
	now := s.cfg.Clock.Now()
	st := s.state(req.Ref)
	st.mu.Lock()
	if st.current == nil {
		st.mu.Unlock()
		return Outcome{}
	}
	if now.Before(st.retryAt) {
		st.mu.Unlock()
		return Outcome{Known: true, ResumeAt: st.retryAt}
	}
	invalid := st.excluded(now)
	want := make(neg.EndpointSet, len(req.Desired))
	for e := range req.Desired {
		if !invalid.Has(e) {
			want.Insert(e)
		}
	}
	pauseEnd := st.migrationStepAt.Add(s.cfg.MigrationPause)
	mig := plan.Migration{Paused: !st.migrationStepAt.IsZero() && now.Before(pauseEnd), Fraction: s.cfg.MigrationFraction,
		Waiting: req.Waiting}
	p := plan.Compute(want, st.current, st.inFlightSet(), s.cfg.BatchSize, s.cfg.Capacity, mig)
	short := s.cfg.BudgetShort != nil && !p.Empty() && s.cfg.BudgetShort()
	out := Outcome{Known: true, OverCapacity: p.OverCapacity, Migrating: p.Migrating}
	out.ResumeAt = plan.Hold(&p, st.attach.observe(p.Attach, st.attaching > 0, now), st.detach.observe(p.Detach, st.detaching > 0, now),
		plan.Pacing{Interval: s.cfg.CallInterval, Quiet: s.cfg.Quiet, BudgetShort: short}, now)
	if p.Migrating > 0 && mig.Paused && (out.ResumeAt.IsZero() || pauseEnd.Before(out.ResumeAt)) {
		out.ResumeAt = pauseEnd
	}
	// The first endpoints of an empty NEG are urgent: the Service's backends serve nothing
	// until they land.
	prio := gce.PriorityNormal
	if len(st.current) == 0 {
		prio = gce.PriorityUrgent
	}
	var groups []*group
	for _, batches := range [][]plan.Batch{p.Attach, p.Detach} {
		if len(batches) == 0 {
			continue
		}
		g := &group{s: s, req: req, op: batches[0].Op, prio: prio, batches: batches, pending: len(batches)}
		g.migrationStep = g.op == plan.Detach && p.MigrationStep > 0
		if st.inFlight == nil {
			st.inFlight = map[neg.Endpoint]plan.Op{}
		}
		for _, b := range batches {
			for _, e := range b.Endpoints {
				st.inFlight[e] = g.op
			}
		}
		if g.op == plan.Attach {
			st.attaching += len(batches)
			st.attach.pacer.Take(now, s.cfg.CallInterval)
		} else {
			st.detaching += len(batches)
			st.detach.pacer.Take(now, s.cfg.CallInterval)
		}
		out.Started += len(batches)
		groups = append(groups, g)
	}
	st.mu.Unlock()
	for _, g := range groups {
		for _, b := range g.batches {
			s.calls.Add(1)
			s.wg.Go(func() {
				defer s.calls.Add(-1)
				g.run(ctx, st, b.Endpoints)
			})
		}
	}
	return out
}

// group is the batches of one direction one Apply started; the last to finish reports Done.
type group struct {
	s       *Syncer
	req     Request
	op      plan.Op
	prio    gce.Priority
	batches []plan.Batch
	// migrationStep: the group detaches a dual-stack migration step's endpoints.
	migrationStep bool

	mu      sync.Mutex
	pending int
	done    Done
}

// run performs one batch (split on invalid endpoints), records its outcome in the NEG's state
// and, for the last batch of the group, reports Done.
func (g *group) run(ctx context.Context, st *negState, eps []neg.Endpoint) {
	s := g.s
	ctx = gce.WithTenant(gce.WithPriority(ctx, g.prio), g.req.Owner.String())
	r := s.callSplitting(ctx, g.op, g.req.Ref, eps, defaultMaxSplitCalls)
	gone := gce.IsNotFound(r.err)
	if gone && g.op == plan.Detach {
		// The NEG is gone, and so are its endpoints.
		r.succeeded, r.failed, r.err = append(r.succeeded, r.failed...), nil, nil
	}
	logger := klog.FromContext(ctx).WithValues("neg", g.req.Ref.Name, "zone", g.req.Ref.Zone, "op", g.op)
	if r.err != nil {
		logger.Error(r.err, "Endpoint call failed", "endpoints", len(r.failed), "class", gce.Classify(r.err).String())
	} else {
		logger.V(2).Info("Endpoint call done", "endpoints", len(r.succeeded), "invalid", len(r.invalid))
	}
	retryAt := s.finish(st, g.op, eps, r)
	if gone {
		s.Forget(g.req.Ref)
	}

	g.mu.Lock()
	g.pending--
	d := &g.done
	d.Succeeded += len(r.succeeded)
	d.Failed += len(r.failed)
	d.Invalid = append(d.Invalid, r.invalid...)
	if d.Err == nil && r.err != nil {
		d.Err, d.RetryAt = r.err, retryAt
	}
	if d.InvalidErr == nil {
		d.InvalidErr = r.invalidErr
	}
	d.Gone = d.Gone || gone
	last := g.pending == 0
	out := *d
	g.mu.Unlock()
	if last && g.migrationStep {
		st.mu.Lock()
		st.migrationStepAt = s.cfg.Clock.Now()
		st.mu.Unlock()
	}
	if last && s.cfg.OnDone != nil {
		out.Ref, out.Owner, out.Op, out.ChangedAt = g.req.Ref, g.req.Owner, g.op, g.req.ChangedAt
		s.cfg.OnDone(out)
	}
}

// finish records the outcome of one call on st: its endpoints leave the in-flight set;
// succeeded endpoints update current; invalid ones are excluded for InvalidEndpointRetry; a
// failure (not NotFound-on-detach) makes current unknown and backs the NEG off. It returns the
// NEG's retry time after a failure.
func (s *Syncer) finish(st *negState, op plan.Op, eps []neg.Endpoint, r callResult) time.Time {
	now := s.cfg.Clock.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.changedSeq = s.seq.Add(1)
	for _, e := range eps {
		delete(st.inFlight, e)
	}
	if len(st.inFlight) == 0 {
		st.inFlight = nil // drops the map's storage (see negState.inFlight)
	}
	if op == plan.Attach {
		st.attaching--
	} else {
		st.detaching--
	}
	if len(r.invalid) > 0 && st.invalid == nil {
		st.invalid = map[neg.Endpoint]time.Time{}
	}
	for _, e := range r.invalid {
		st.invalid[e] = now.Add(s.cfg.InvalidEndpointRetry)
	}
	c := completion{op: op, succeeded: r.succeeded}
	if st.current != nil {
		c.applyTo(st.current)
	}
	if st.listing {
		st.journal = append(st.journal, c)
	}
	if r.err != nil {
		st.uncertainDuringList = st.listing
		return st.fail(s.retryAt(r.err))
	}
	if len(r.succeeded) > 0 {
		st.failures = 0
		st.retryAt = time.Time{}
	}
	return time.Time{}
}

// callResult is the outcome of one batch, possibly split into several calls.
type callResult struct {
	succeeded, invalid, failed []neg.Endpoint
	// err is the first non-invalid error; invalidErr the first invalid one.
	err, invalidErr error
}

// callSplitting calls attach or detach with eps. If GCE rejects the batch as invalid, it
// splits the batch in halves, recursively, to isolate the endpoints GCE refuses and apply the
// rest; budget bounds the number of calls, and endpoints still unresolved when it runs out are
// treated as invalid.
func (s *Syncer) callSplitting(ctx context.Context, op plan.Op, ref neg.Ref, eps []neg.Endpoint, budget int) callResult {
	var r callResult
	var run func(eps []neg.Endpoint)
	run = func(eps []neg.Endpoint) {
		if budget <= 0 {
			r.invalid = append(r.invalid, eps...)
			return
		}
		budget--
		err := s.call(ctx, op, ref, eps)
		switch {
		case err == nil:
			r.succeeded = append(r.succeeded, eps...)
		case gce.IsInvalid(err):
			if r.invalidErr == nil {
				r.invalidErr = err
			}
			if len(eps) == 1 {
				r.invalid = append(r.invalid, eps...)
				return
			}
			mid := len(eps) / 2
			run(eps[:mid])
			run(eps[mid:])
		default:
			r.failed = append(r.failed, eps...)
			if r.err == nil {
				r.err = err
			}
		}
	}
	run(eps)
	return r
}

// call makes one attach or detach call.
func (s *Syncer) call(ctx context.Context, op plan.Op, ref neg.Ref, eps []neg.Endpoint) error {
	if op == plan.Attach {
		return s.cfg.Cloud.AttachNetworkEndpoints(ctx, ref.Zone, ref.Name, eps)
	}
	return s.cfg.Cloud.DetachNetworkEndpoints(ctx, ref.Zone, ref.Name, eps)
}
