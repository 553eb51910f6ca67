package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/pkg/negsync"
	"github.com/neg-controller/neg-controller/pkg/wanted"
)

// prepare is the first phase of a NEG task: make sure the NEG exists and is ours (creating it
// if needed) and that its current endpoints are known (listing it if needed, see
// negsync.Syncer.Refresh). It sets t.ready on success. A NEG in backoff after a failure is
// skipped and the Service requeued for when the backoff ends.
func (c *Controller) prepare(ctx context.Context, s *serviceSync, t *negTask) {
	if at := c.negs.RetryAt(t.ref); c.clock.Now().Before(at) {
		s.requeueBy(at)
		return
	}
	if t.remove {
		if !c.removeNEG(ctx, s, t) {
			return
		}
	} else if !c.ensureNEG(ctx, s, t) {
		return
	}
	verifyAt, err := c.negs.Refresh(ctx, t.ref, s.key)
	if err != nil {
		c.listFailed(ctx, s, t, err)
		return
	}
	if !verifyAt.IsZero() {
		s.requeueBy(verifyAt)
	}
	t.ready = true
}

// ensureNEG makes sure the NEG of t exists and may be used by the Service. It never adopts,
// modifies or deletes a NEG whose description is not ours. A missing NEG of an active zone is
// created in the background (startCreate): ensureNEG then returns false, and the Service is
// synced again when the insert finishes.
func (c *Controller) ensureNEG(ctx context.Context, s *serviceSync, t *negTask) bool {
	want := c.description(s.key, t.port.Port)
	if e := c.index.Get(t.ref); e != nil {
		if e.Verdict == negindex.HybridController {
			return c.checkAdoption(ctx, s, t, e)
		}
		return c.checkOwnership(s, t, e.NEG, want)
	}
	if !t.active {
		return false
	}
	c.startCreate(ctx, s, t, want)
	return false
}

// checkOwnership decides whether an existing NEG may be used for the Service port of t (see
// naming.Classify). A NEG we may not use gets a NEGNotOwned warning and is left alone; the
// Service is re-checked slowly (and promptly when the NEG's owner deletes it).
func (c *Controller) checkOwnership(s *serviceSync, t *negTask, n gce.NEG, want naming.Description) bool {
	slot := ReasonNEGNotOwned + ":" + t.ref.String()
	own := naming.Classify(n.Description, want, t.port.Generated())
	if (own == naming.Owned || own == naming.Adoptable) && c.refuseMisfit(s, t, n) {
		return false
	}
	switch own {
	case naming.Owned:
		c.warnings.Clear(s.key, slot)
		if !t.port.Generated() {
			c.index.MarkClaimed(t.ref)
		}
		return true
	case naming.Adoptable:
		c.index.Adopt(n, want)
		c.warnings.Clear(s.key, slot)
		return true
	}
	owner := "someone else (it was not created by this controller for this Service)"
	if d, err := naming.ParseDescription(n.Description); err == nil && own == naming.OtherService {
		owner = fmt.Sprintf("Service %s/%s port %s", d.Namespace, d.ServiceName, d.Port)
	}
	c.warn(s.key, s.target, slot, ReasonNEGNotOwned, fmt.Sprintf(
		"NEG %q in zone %q already exists and belongs to %s; it is not used, modified or deleted. "+
			"Delete it or choose another NEG name for port %d.", t.ref.Name, t.ref.Zone, owner, t.port.Port))
	s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Max))
	return false
}

// refuseMisfit refuses (NEGNotOwned Warning, slow re-check) an existing NEG made for the Service
// port of t that does not fit (see mismatch); it reports whether it did.
func (c *Controller) refuseMisfit(s *serviceSync, t *negTask, n gce.NEG) bool {
	reason := c.mismatch(n, s.negType())
	if reason == "" {
		return false
	}
	c.warn(s.key, s.target, ReasonNEGNotOwned+":"+t.ref.String(), ReasonNEGNotOwned, fmt.Sprintf(
		"NEG %q in zone %q already exists but %s; it is not used, modified or deleted. "+
			"Delete it or choose another NEG name for port %d.", t.ref.Name, t.ref.Zone, reason, t.port.Port))
	s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Max))
	return true
}

// mismatch explains why an existing NEG whose description fits cannot be used for a Service
// whose NEGs are of type want: its type, its network, or a subnetwork on a hybrid NEG ("" when
// all fit). GKE deletes and re-creates a NEG on the wrong network; a load balancer may use it,
// so we refuse instead. A NEG of the other type we create is what switching --neg-type (or the
// Service's annotation) leaves behind: it is refused too, never touched.
func (c *Controller) mismatch(n gce.NEG, want string) string {
	switch c.index.Rule().Misfit(n) {
	case negindex.WrongType:
		return fmt.Sprintf("is of type %s, not %s", n.Type, want)
	case negindex.WrongNetwork:
		if negindex.TypeOf(n) == gce.TypeNonGCPPrivateIPPort && n.Subnetwork != "" {
			return fmt.Sprintf("is a %s NEG with subnetwork %q (hybrid NEGs take a network only)", n.Type, n.Subnetwork)
		}
		return fmt.Sprintf("is on network %q, not the configured %q", n.Network, c.cfg.Network)
	}
	if got := negindex.TypeOf(n); got != want {
		return fmt.Sprintf("is of type %s, not %s, the type of this Service's NEGs (did --neg-type or the "+
			"Service's annotation change since it was created? Remove it from its backend services and delete it, "+
			"and a NEG of the right type is created)", got, want)
	}
	return ""
}

// checkAdoption decides whether an existing NEG of k8s-hybrid-neg-controller may be used for the
// Service port of t: only when adopting (the entry is ours), made for this Service, claimed by
// it (its hybrid-neg-status lists the name, see claimed) and fitting (type, network). Otherwise
// it is refused like any NEG of someone else.
func (c *Controller) checkAdoption(ctx context.Context, s *serviceSync, t *negTask, e *negindex.Entry) bool {
	slot := ReasonNEGNotOwned + ":" + t.ref.String()
	if !e.Ours || e.Service() != s.key || !c.claimed(s.svc, s.want, t.ref, *e) {
		c.warn(s.key, s.target, slot, ReasonNEGNotOwned, fmt.Sprintf(
			"NEG %q in zone %q already exists and was created by k8s-hybrid-neg-controller for Service %s/%s; it is "+
				"not used, modified or deleted (neg-controller adopts such a NEG only with --adopt-hybrid-neg-controller-negs, "+
				"for the Service it was created for, when the Service's %s lists it).",
			t.ref.Name, t.ref.Zone, e.Description.Namespace, e.Description.ServiceName, annotation.HybridNEGStatusKey))
		s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Max))
		return false
	}
	if c.refuseMisfit(s, t, e.NEG) {
		return false
	}
	c.warnings.Clear(s.key, slot)
	c.adopt(ctx, s, t, e)
	return true
}

// sameType reports whether the NEG ref is of the type of the Service's NEGs.
func (c *Controller) sameType(s *serviceSync, ref neg.Ref) bool {
	e := c.index.Get(ref)
	return e != nil && negindex.TypeOf(e.NEG) == s.negType()
}

// listFailed handles a failed listing of the NEG of t: a NEG deleted behind our back is
// forgotten (and an active one created again at once); other errors back the NEG off.
func (c *Controller) listFailed(ctx context.Context, s *serviceSync, t *negTask, err error) {
	if gce.IsNotFound(err) {
		klog.FromContext(ctx).Info("NEG disappeared from GCE", "neg", t.ref.Name, "zone", t.ref.Zone)
		c.index.Remove(t.ref)
		c.negs.Forget(t.ref)
		if t.active {
			s.requeueBy(c.clock.Now())
		}
		return
	}
	c.failNEG(ctx, s, t, err, ReasonListNetworkEndpointsFailed,
		fmt.Sprintf("Failed to list the endpoints of NEG %q in zone %q: %v", t.ref.Name, t.ref.Zone, err))
}

// reconcile is the second phase of a NEG task: hand the desired endpoints to the NEG's syncer,
// which plans and starts the calls. desired nil means the Service (or its port) is gone and the
// NEG is kept because a backend service uses it: its endpoints stay as they are; so do those of
// a kept NEG of the other type (the Service's endpoints are placed for its own type). An
// inactive NEG (no candidate node in its zone) is emptied.
func (c *Controller) reconcile(ctx context.Context, s *serviceSync, t *negTask, desired neg.EndpointSet) {
	if t.remove && (desired == nil || !c.sameType(s, t.ref)) {
		return
	}
	if !t.remove && !t.active {
		desired = nil
	}
	var waiting neg.EndpointSet
	if desired != nil {
		waiting = s.waiting[t.port.Port][t.ref.Zone]
	}
	out := c.negs.Apply(ctx, negsync.Request{Ref: t.ref, Owner: s.key, Desired: desired, Waiting: waiting,
		ChangedAt: c.changes.Active(s.key)})
	if !out.Known {
		return
	}
	if !out.ResumeAt.IsZero() {
		s.requeueBy(out.ResumeAt)
	}
	if out.Migrating > 0 {
		klog.FromContext(ctx).Info("NEG endpoints migrating between single- and dual-stack, in steps",
			"neg", t.ref.Name, "zone", t.ref.Zone, "migrating", out.Migrating, "stack", s.stack.String())
	}
	slot := ReasonEndpointsOverCapacity + ":" + t.ref.String()
	if out.OverCapacity > 0 {
		c.warn(s.key, s.target, slot, ReasonEndpointsOverCapacity, fmt.Sprintf(
			"NEG %q in zone %q is full (%d endpoints): %d endpoint(s) are not attached",
			t.ref.Name, t.ref.Zone, c.cfg.MaxEndpointsPerNEG, out.OverCapacity))
	} else {
		c.warnings.Clear(s.key, slot)
	}
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
func (c *Controller) removeNEG(ctx context.Context, s *serviceSync, t *negTask) bool {
	logger := klog.FromContext(ctx).WithValues("neg", t.ref.Name, "zone", t.ref.Zone)
	now := c.clock.Now()
	if at := c.negs.DeleteRetryAt(t.ref); now.Before(at) {
		s.requeueBy(at)
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
		c.index.Remove(t.ref)
		c.negs.Forget(t.ref)
		c.warnings.Clear(s.key, inUseSlot)
		c.warnings.Clear(s.key, ReasonDeleteNEGFailed+":"+t.ref.String())
		logger.Info("Deleted NEG")
		c.normal(s.target, ReasonDelete, fmt.Sprintf("Deleted NEG %q in zone %q.", t.ref.Name, t.ref.Zone))
		c.enqueueClaimants(t.ref.Name)
		return false
	case gce.IsInUse(err):
		// Retried like other "later" errors, but at least every GC period (as GKE's GC does), so
		// the NEG goes soon after the backend service lets go of it.
		at := c.negs.DeferDelete(t.ref, err, c.cfg.GCPeriod)
		logger.Info("NEG no longer wanted but used by a backend service; keeping it with its endpoints", "retryIn", at.Sub(now))
		c.warn(s.key, s.target, inUseSlot, ReasonNEGInUse, fmt.Sprintf(
			"NEG %q in zone %q is no longer wanted but is still used by a backend service: it is kept with its "+
				"endpoints (in step with the Service while it has the port). Remove it from the backend service "+
				"and it will be deleted. (%v)", t.ref.Name, t.ref.Zone, err))
		c.negs.Note(t.ref, s.key, ReasonNEGInUse, err.Error())
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
	claimants, _ := wanted.Claimants(c.svcIndexer, name)
	for _, svc := range claimants {
		c.queue.Add(cache.MetaObjectToName(svc))
	}
}

// failNEG records a failed call on the NEG of t: backoff for the NEG, a (deduplicated)
// Warning event, and a requeue for when the backoff ends.
func (c *Controller) failNEG(ctx context.Context, s *serviceSync, t *negTask, err error, reason, msg string) {
	s.requeueBy(c.recordNEGFailure(ctx, s.key, s.target, t.ref, err, reason, msg))
}

// recordNEGFailure records a failed call on ref for the Service key: backoff for the NEG and the
// failure for the conditions (negsync.Syncer.Fail), a log line and a (deduplicated) Warning
// event on target. It returns when the NEG may be retried.
func (c *Controller) recordNEGFailure(ctx context.Context, key cache.ObjectName, target *corev1.Service, ref neg.Ref, err error, reason, msg string) time.Time {
	at := c.negs.Fail(ref, key, err, reason, msg)
	klog.FromContext(ctx).Error(err, "NEG call failed", "neg", ref.Name, "zone", ref.Zone,
		"reason", reason, "class", gce.Classify(err).String(), "retryIn", at.Sub(c.clock.Now()))
	c.warn(key, target, reason+":"+ref.String(), reason, msg)
	return at
}

// description returns the ownership description of the NEG of a Service port.
func (c *Controller) description(key cache.ObjectName, port int32) naming.Description {
	return naming.NewDescription(c.cfg.ClusterUID, key.Namespace, key.Name, port)
}
