package controller

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// prepare is the first phase of a NEG task: make sure the NEG exists and is ours (creating it
// if needed) and that its current endpoints are known (listing it if needed). It sets t.ready
// on success. A NEG in backoff after a failure is skipped and the Service requeued for when
// the backoff ends.
func (c *Controller) prepare(ctx context.Context, s *serviceSync, t *negTask) {
	now := c.clock.Now()
	snap := c.states.snapshot(t.ref, now)
	if now.Before(snap.retryAt) {
		s.requeueBy(snap.retryAt)
		return
	}
	if t.remove {
		if !c.removeNEG(ctx, s, t, snap) {
			return
		}
	} else if !c.ensureNEG(ctx, s, t) {
		return
	}
	// A NEG ensureNEG just created is known to be empty: no list needed.
	snap = c.states.snapshot(t.ref, now)
	listedAt := snap.listedAt
	if snap.current == nil || !now.Before(c.verifyDue(t.ref, listedAt)) {
		if !c.listNEG(ctx, s, t) {
			return
		}
		listedAt = now
	}
	if c.cfg.NEGVerifyPeriod <= maxVerifyRequeue {
		s.requeueBy(c.verifyDue(t.ref, listedAt))
	}
	t.ready = true
}

// maxVerifyRequeue bounds the verify periods for which a sync schedules its own next verify;
// longer ones (resyncs disabled) leave verifies to events.
const maxVerifyRequeue = 24 * time.Hour

// verifyDue returns when the cached endpoints of ref, listed at listedAt, must be listed again:
// between half of and the whole NEGVerifyPeriod later, at a fraction fixed per NEG (a hash of its
// zone and name). Each sync asks to be re-run then, so the re-lists of many NEGs spread over
// the period (bounded by the listEndpoints rate limit) instead of all coming at one resync.
func (c *Controller) verifyDue(ref neg.Ref, listedAt time.Time) time.Time {
	h := fnv.New32a()
	_, _ = h.Write([]byte(ref.String()))
	frac := 0.5 + 0.5*float64(h.Sum32())/float64(math.MaxUint32)
	return listedAt.Add(time.Duration(float64(c.cfg.NEGVerifyPeriod) * frac))
}

// ensureNEG makes sure the NEG of t exists and may be used by the Service. It never adopts,
// modifies or deletes a NEG whose description is not ours. A missing NEG of an active zone is
// created in the background (startCreate): ensureNEG then returns false, and the Service is
// synced again when the insert finishes.
func (c *Controller) ensureNEG(ctx context.Context, s *serviceSync, t *negTask) bool {
	want := c.description(s.key, t.port.port)
	if e := c.index.get(t.ref); e != nil {
		return c.checkOwnership(s, t, e.neg, want)
	}
	if !t.active {
		return false
	}
	c.startCreate(s, t, want)
	return false
}

// checkOwnership decides whether an existing NEG may be used for the Service port of t (see
// naming.Classify). A NEG we may not use gets a NEGNotOwned warning and is left alone; the
// Service is re-checked slowly (and promptly when the NEG's owner deletes it).
func (c *Controller) checkOwnership(s *serviceSync, t *negTask, n gce.NEG, want naming.Description) bool {
	slot := ReasonNEGNotOwned + ":" + t.ref.String()
	own := naming.Classify(n.Description, want, !t.port.custom)
	if own == naming.Owned || own == naming.Adoptable {
		if reason := c.mismatch(n); reason != "" {
			c.warn(s.key, s.target, slot, ReasonNEGNotOwned, fmt.Sprintf(
				"NEG %q in zone %q already exists but %s; it is not used, modified or deleted. "+
					"Delete it or choose another NEG name for port %d.", t.ref.Name, t.ref.Zone, reason, t.port.port))
			s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Max))
			return false
		}
	}
	switch own {
	case naming.Owned:
		c.warnings.clear(s.key, slot)
		if t.port.custom {
			c.index.markClaimed(t.ref)
		}
		return true
	case naming.Adoptable:
		c.index.putOwned(n, want)
		c.warnings.clear(s.key, slot)
		return true
	}
	owner := "someone else (it was not created by this controller for this Service)"
	if d, err := naming.ParseDescription(n.Description); err == nil && own == naming.OtherService {
		owner = fmt.Sprintf("Service %s/%s port %s", d.Namespace, d.ServiceName, d.Port)
	}
	c.warn(s.key, s.target, slot, ReasonNEGNotOwned, fmt.Sprintf(
		"NEG %q in zone %q already exists and belongs to %s; it is not used, modified or deleted. "+
			"Delete it or choose another NEG name for port %d.", t.ref.Name, t.ref.Zone, owner, t.port.port))
	s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Max))
	return false
}

// mismatch explains why an existing NEG whose description fits cannot be ours: its type or its
// network ("" when both fit). GKE deletes and re-creates a NEG on the wrong network; a load
// balancer may use it, so we refuse instead.
func (c *Controller) mismatch(n gce.NEG) string {
	switch c.index.rule.misfit(n) {
	case wrongType:
		return fmt.Sprintf("is of type %s, not %s", n.Type, gce.TypeGCEVMIPPort)
	case wrongNetwork:
		return fmt.Sprintf("is on network %q, not the configured %q", n.Network, c.cfg.Network)
	}
	return ""
}

// listNEG reads the current endpoints of the NEG of t from GCE (without health).
func (c *Controller) listNEG(ctx context.Context, s *serviceSync, t *negTask) bool {
	c.states.beginList(t.ref, s.key)
	// A periodic verify (the endpoints are known) waits behind the calls Services wait for; a
	// NEG whose endpoints are unknown blocks its Service: urgent the first time (start,
	// adoption), normal after a failed call.
	prio := gce.PriorityNormal
	switch snap := c.states.snapshot(t.ref, c.clock.Now()); {
	case snap.current != nil:
		prio = gce.PriorityBackground
	case snap.listedAt.IsZero():
		prio = gce.PriorityUrgent
	}
	ctx = gce.WithTenant(gce.WithPriority(ctx, prio), s.key.String())
	eps, err := c.cfg.Cloud.ListNetworkEndpoints(ctx, t.ref.Zone, t.ref.Name, false)
	if err != nil {
		c.states.endList(t.ref, nil, c.clock.Now())
		if gce.IsNotFound(err) {
			// Deleted behind our back: forget it; an active NEG is created again at once.
			klog.FromContext(ctx).Info("NEG disappeared from GCE", "neg", t.ref.Name, "zone", t.ref.Zone)
			c.index.remove(t.ref)
			c.states.forget(t.ref)
			if t.active {
				s.requeueBy(c.clock.Now())
			}
			return false
		}
		c.failNEG(ctx, s, t, err, ReasonListNetworkEndpointsFailed,
			fmt.Sprintf("Failed to list the endpoints of NEG %q in zone %q: %v", t.ref.Name, t.ref.Zone, err))
		return false
	}
	set := make(neg.EndpointSet, len(eps))
	for _, e := range eps {
		set.Insert(e.Endpoint)
	}
	c.states.endList(t.ref, set, c.clock.Now())
	return true
}

// reconcile is the second phase of a NEG task: plan the calls from desired to current (in
// flight held back) and start them, or delete an emptied NEG the Service no longer wants.
func (c *Controller) reconcile(ctx context.Context, s *serviceSync, t *negTask, desired neg.EndpointSet) {
	snap := c.states.snapshot(t.ref, c.clock.Now())
	if snap.current == nil {
		return
	}
	want := neg.NewEndpointSet()
	switch {
	case t.remove && desired == nil:
		// Kept because a backend service uses it, and the Service (or its port) is gone: the
		// endpoints stay as they are.
		want = snap.current
	case t.remove || t.active:
		// Kept in use while the Service has the port, or wanted: in step with the slices.
		for e := range desired {
			if !snap.invalid.Has(e) {
				want.Insert(e)
			}
		}
	}
	p := plan.Compute(want, snap.current, snap.inFlight, c.cfg.BatchSize, c.cfg.MaxEndpointsPerNEG)
	if at := coalesce(&p, snap, c.clock.Now(), c.cfg.CallInterval); !at.IsZero() {
		s.requeueBy(at)
	}
	slot := ReasonEndpointsOverCapacity + ":" + t.ref.String()
	if p.OverCapacity > 0 {
		c.warn(s.key, s.target, slot, ReasonEndpointsOverCapacity, fmt.Sprintf(
			"NEG %q in zone %q is full (%d endpoints): %d endpoint(s) are not attached",
			t.ref.Name, t.ref.Zone, c.cfg.MaxEndpointsPerNEG, p.OverCapacity))
	} else {
		c.warnings.clear(s.key, slot)
	}
	if !p.Empty() {
		c.launch(ctx, s, t.ref, p)
	}
}

// coalesce holds back new attach calls while earlier attach calls on the NEG are in flight or
// its attach pacer has no token (see callPacer: one call per interval sustained, a burst of
// two), and likewise detach calls: the finishing call re-syncs the Service, and a plan held by
// its pacer asks for a sync when a token is back (the returned time, zero when nothing waits on
// a pacer), which then sends everything that arrived meanwhile in as few calls as the batch
// size allows. A change to a quiet NEG thus goes out at once, while a stream of changes costs
// about one call per NEG and direction per operation latency or interval, whichever is longer,
// instead of one call per change (kubernetes/ingress-gce also runs at most one attach and one
// detach per NEG at a time). The calls of one plan all start together, so N endpoints changed
// together cost ceil(N/batch) calls.
func coalesce(p *plan.Plan, snap snapshot, now time.Time, interval time.Duration) (resumeAt time.Time) {
	hold := func(batches *[]plan.Batch, inFlight bool, pacer callPacer) {
		if len(*batches) == 0 {
			return
		}
		ready := pacer.readyAt(now, interval)
		if !inFlight && !ready.After(now) {
			return
		}
		for _, b := range *batches {
			p.HeldInFlight += len(b.Endpoints)
		}
		*batches = nil
		if !inFlight && (resumeAt.IsZero() || ready.Before(resumeAt)) {
			resumeAt = ready
		}
	}
	hold(&p.Attach, snap.attaching, snap.pacers[opAttach])
	hold(&p.Detach, snap.detaching, snap.pacers[opDetach])
	return resumeAt
}

// removeNEG deletes a NEG of ours the Service no longer wants, endpoints and all (GCE deletes a
// NEG with endpoints; no detach is needed). It returns true when the NEG is kept because a
// backend service uses it — GCE refused the delete (resourceInUseByAnotherResource), or the
// backend service reconciler still has it as a backend, or an earlier refusal's retry time has
// not come — and false when the NEG is gone or the delete failed otherwise (backoff).
//
// A kept NEG is never emptied: while the Service has the port its endpoints follow the
// EndpointSlices, after that they stay as they are (see reconcile); the delete is retried
// later (NEGInUse). Detaching everything before deleting would turn an annotation typo or a
// port rename into an outage for the load balancer that uses the NEG.
func (c *Controller) removeNEG(ctx context.Context, s *serviceSync, t *negTask, snap snapshot) bool {
	logger := klog.FromContext(ctx).WithValues("neg", t.ref.Name, "zone", t.ref.Zone)
	now := c.clock.Now()
	if now.Before(snap.deleteRetryAt) {
		s.requeueBy(snap.deleteRetryAt)
		return true
	}
	if c.backendsHold(ctx, s, t) {
		return true
	}
	// Deleting is cleanup: nobody waits for it.
	err := c.cfg.Cloud.DeleteNEG(gce.WithTenant(gce.WithPriority(ctx, gce.PriorityBackground), s.key.String()), t.ref.Zone, t.ref.Name)
	inUseSlot := ReasonNEGInUse + ":" + t.ref.String()
	switch {
	case err == nil:
		c.index.remove(t.ref)
		c.states.forget(t.ref)
		c.warnings.clear(s.key, inUseSlot)
		c.warnings.clear(s.key, ReasonDeleteNEGFailed+":"+t.ref.String())
		logger.Info("Deleted NEG")
		c.normal(s.target, ReasonDelete, fmt.Sprintf("Deleted NEG %q in zone %q.", t.ref.Name, t.ref.Zone))
		c.enqueueClaimants(t.ref.Name)
		return false
	case gce.IsInUse(err):
		// Retried like other "later" errors, but at least every GC period (as GKE's GC does), so
		// the NEG goes soon after the backend service lets go of it.
		policy := retryPolicy(gce.Classify(err))
		at := c.states.deferDelete(t.ref, func(failures int) time.Time {
			return c.clock.Now().Add(min(jitter(c.cfg.Backoff.Delay(failures, policy)), c.cfg.GCPeriod))
		})
		logger.Info("NEG no longer wanted but used by a backend service; keeping it with its endpoints", "retryIn", at.Sub(now))
		c.warn(s.key, s.target, inUseSlot, ReasonNEGInUse, fmt.Sprintf(
			"NEG %q in zone %q is no longer wanted but is still used by a backend service: it is kept with its "+
				"endpoints (in step with the Service while it has the port). Remove it from the backend service "+
				"and it will be deleted. (%v)", t.ref.Name, t.ref.Zone, err))
		c.noteNEGFailure(s.key, t.ref, ReasonNEGInUse, err.Error())
		s.requeueBy(at)
		return true
	default:
		c.failNEG(ctx, s, t, err, ReasonDeleteNEGFailed,
			fmt.Sprintf("Failed to delete NEG %q in zone %q: %v", t.ref.Name, t.ref.Zone, err))
		return false
	}
}

// enqueueClaimants enqueues the Services whose annotation claims the custom NEG name.
func (c *Controller) enqueueClaimants(name string) {
	objs, _ := c.svcIndexer.ByIndex(customNameIndex, name)
	for _, o := range objs {
		if k, err := cache.ObjectToName(o); err == nil {
			c.queue.Add(k)
		}
	}
}

// failNEG records a failed call on the NEG of t: backoff for the NEG, a (deduplicated)
// Warning event, and a requeue for when the backoff ends.
func (c *Controller) failNEG(ctx context.Context, s *serviceSync, t *negTask, err error, reason, msg string) {
	s.requeueBy(c.recordNEGFailure(ctx, s.key, s.target, t.ref, err, reason, msg))
}

// recordNEGFailure records a failed call on ref for the Service key: backoff for the NEG, a
// log line, a (deduplicated) Warning event on target and the failure for the conditions. It
// returns when the NEG may be retried.
func (c *Controller) recordNEGFailure(ctx context.Context, key cache.ObjectName, target *corev1.Service, ref neg.Ref, err error, reason, msg string) time.Time {
	class := gce.Classify(err)
	at := c.states.failNEG(ref, c.retryAt(retryPolicy(class)))
	klog.FromContext(ctx).Error(err, "NEG call failed", "neg", ref.Name, "zone", ref.Zone,
		"reason", reason, "class", class.String(), "retryIn", at.Sub(c.clock.Now()))
	c.warn(key, target, reason+":"+ref.String(), reason, msg)
	c.noteNEGFailure(key, ref, reason, msg)
	return at
}

// retryAt returns the function computing when a NEG may be retried after its n-th
// consecutive failure with the given policy.
func (c *Controller) retryAt(policy gce.RetryPolicy) func(failures int) time.Time {
	return func(failures int) time.Time {
		return c.clock.Now().Add(jitter(c.cfg.Backoff.Delay(failures, policy)))
	}
}
