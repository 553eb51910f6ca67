package negbinding

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/endpoints"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negsync"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// refState is what a sync decided for one zonal NEG of a binding.
type refState int

const (
	// refused: named by the spec but not bound (refusal says why); never touched.
	refused refState = iota
	// accepted: bound; its endpoints follow the Service port.
	accepted
	// releasing: recorded in the status but no longer bound (removed from the spec, or
	// refused now): the endpoints are detached, then it leaves the status.
	releasing
	// dropped: recorded in the status but not to be touched (gone from GCE, another binding
	// manages it, or it is no longer safe to touch): it leaves the status as it is.
	dropped
	// unknown: reading the NEG failed; nothing is decided (or changed) until it is read.
	unknown
)

// refTask is one zonal NEG a sync works on: named by the spec, recorded in the status, or
// both.
type refTask struct {
	ref      neg.Ref
	subnet   string
	inSpec   bool
	recorded bool

	state   refState
	refusal *refusal
	neg     *gce.NEG // as read from GCE (nil when not read or gone)
	err     error    // the read or listing failure of an unknown NEG
	// known is set when the NEG's endpoints are known after Refresh.
	known bool
	// desired are the endpoints the NEG must hold (releasing: none).
	desired neg.EndpointSet
	// waiting are endpoints of dual-stack pods waiting for their other address (negsync.Request).
	waiting neg.EndpointSet
	// progress is the NEG's progress after Apply.
	progress negsync.Progress
	failure  string
}

// bindingSync is one sync of one binding.
type bindingSync struct {
	b     *NetworkEndpointGroupBinding
	key   cache.ObjectName
	tasks []*refTask
	// backendReason and backendMessage explain why the Service port gives no endpoints (""
	// when it does).
	backendReason, backendMessage string
	endpoints                     int

	mu        sync.Mutex
	requeueAt time.Time
}

// requeueBy asks for another sync no later than t.
func (s *bindingSync) requeueBy(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requeueAt.IsZero() || t.Before(s.requeueAt) {
		s.requeueAt = t
	}
}

// maxParallel bounds the GCE reads one sync makes at once.
const maxParallel = 8

// parallel runs fn for every task, at most maxParallel at once, and waits.
func parallel(tasks []*refTask, fn func(t *refTask)) {
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for _, t := range tasks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(t)
		})
	}
	wg.Wait()
}

// sync brings the NEGs of one binding in step with its Service port and returns how soon it must
// be synced again (0: only on events).
//
// Steps: a deleted binding is cleaned up (cleanup.go); an unusable spec touches nothing; the
// finalizer is added; every zonal NEG of the spec and of the status is judged (accept); the
// status records the accepted NEGs before any call; the endpoints of the accepted and
// releasing NEGs are made known (Refresh); the desired endpoints come from the Service port's
// EndpointSlices; the calls start (Apply); the status is written when it changed.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (time.Duration, error) {
	b := c.binding(key)
	if b == nil {
		c.forget(key)
		return 0, nil
	}
	if b.DeletionTimestamp != nil {
		return c.cleanup(ctx, b)
	}
	if problems := Validate(b.Spec); len(problems) > 0 {
		msg := "The binding is not usable, so its NEGs are left as they are: " + strings.Join(problems, "; ")
		c.warn(b, "spec", ReasonInvalidSpec, msg)
		st := withConditions(b, b.Status.NetworkEndpointGroups, condition(ConditionBackendRefAttached, false, ReasonInvalidSpec, msg))
		return 0, c.writeStatus(ctx, b, st)
	}
	b, err := c.ensureFinalizer(ctx, b)
	if err != nil || b == nil {
		return 0, err
	}
	s := &bindingSync{b: b, key: key, tasks: c.tasks(b)}
	c.accept(ctx, s)
	if err := c.record(ctx, s); err != nil {
		return 0, err
	}
	c.refresh(ctx, s)
	if err := c.desired(s); err != nil {
		return 0, err
	}
	c.apply(ctx, s)
	err = c.writeStatus(ctx, s.b, c.statusOf(s))
	c.release(s)
	var after time.Duration
	if !s.requeueAt.IsZero() {
		after = max(s.requeueAt.Sub(c.clock.Now()), time.Millisecond)
	}
	return after, err
}

// tasks lists the zonal NEGs of the spec and of the status, by name then zone.
func (c *Controller) tasks(b *NetworkEndpointGroupBinding) []*refTask {
	byRef := map[neg.Ref]*refTask{}
	refs, _ := specRefs(b.Spec)
	for _, r := range refs {
		byRef[r.ref] = &refTask{ref: r.ref, subnet: r.subnet, inSpec: true}
	}
	for _, r := range statusRefs(b) {
		if t := byRef[r]; t != nil {
			t.recorded = true
		} else {
			byRef[r] = &refTask{ref: r, recorded: true}
		}
	}
	out := slices.Collect(maps.Values(byRef))
	slices.SortFunc(out, func(a, b *refTask) int { return compareRefs(a.ref, b.ref) })
	return out
}

// accept judges every zonal NEG of s (see the package documentation): a NEG of the spec is
// accepted when the prechecks, the annotation check, GCE's answer and the claim all allow it;
// a NEG of the status that is not accepted is released (or dropped, when it must not be
// touched).
func (c *Controller) accept(ctx context.Context, s *bindingSync) {
	parallel(s.tasks, func(t *refTask) { c.judgeTask(ctx, s, t) })
}

// judgeTask decides the state of one zonal NEG.
func (c *Controller) judgeTask(ctx context.Context, s *bindingSync, t *refTask) {
	if t.inSpec {
		t.refusal = precheck(s.b.Namespace, boundRef{ref: t.ref, subnet: t.subnet}, c.cfg.Allow, c.env)
		if t.refusal == nil && !t.recorded {
			// A NEG the binding records stays bound: the annotation side refuses it too
			// (it never adopts a custom-named NEG without its own description), and
			// releasing it would empty a load balancer's backend for a typo.
			t.refusal = c.annotationConflict(t.ref.Name)
		}
	}
	if t.refusal == nil || t.recorded {
		n, err := c.negs.get(ctx, t.ref, s.key.String())
		switch {
		case err != nil:
			t.state, t.err = unknown, err
			c.warn(s.b, ReasonListFailed+":"+t.ref.String(), ReasonListFailed,
				fmt.Sprintf("Failed to read NEG %q in zone %q (will retry): %v", t.ref.Name, t.ref.Zone, err))
			s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Base))
			return
		case n == nil:
			if t.refusal == nil {
				t.refusal = &refusal{ReasonNEGNotFound, fmt.Sprintf(
					"NEG %q does not exist in zone %q (a binding creates nothing: create it, or remove the zone)", t.ref.Name, t.ref.Zone)}
			}
			s.requeueBy(c.clock.Now().Add(c.negs.missingAge))
		default:
			t.neg = n
			if r := judge(*n, s.b.Namespace, t.subnet, c.env); r != nil {
				if t.refusal == nil {
					t.refusal = r
				}
				if t.recorded { // never touch it again
					t.state = dropped
					return
				}
			}
		}
	}
	c.claim(s, t)
}

// claim settles the state of a judged NEG with the claims registry.
func (c *Controller) claim(s *bindingSync, t *refTask) {
	me := holder{key: s.key, recorded: t.recorded, named: t.inSpec && t.refusal == nil, created: s.b.CreationTimestamp.UnixNano()}
	owner := c.claims.decide(t.ref, me, c.holders(s.key, t.ref))
	switch {
	case owner == s.key && t.inSpec && t.refusal == nil:
		t.state = accepted
	case owner == s.key && t.recorded && t.neg != nil:
		t.state = releasing
	case t.recorded:
		t.state = dropped
	default:
		t.state = refused
	}
	if owner != s.key && owner != (cache.ObjectName{}) && t.inSpec && t.refusal == nil {
		t.refusal = &refusal{ReasonNEGConflict, fmt.Sprintf(
			"NEG %q in zone %q is bound by NetworkEndpointGroupBinding %s; a NEG has one binding at a time",
			t.ref.Name, t.ref.Zone, owner)}
	}
}

// holders returns what the cache knows of the other bindings' holds on ref.
func (c *Controller) holders(me cache.ObjectName, ref neg.Ref) []holder {
	var out []holder
	for _, o := range c.byIndex(negNameIndex, ref.Name) {
		key := cache.MetaObjectToName(o)
		if key == me {
			continue
		}
		h := holder{key: key, recorded: slices.Contains(statusRefs(o), ref), created: o.CreationTimestamp.UnixNano()}
		if o.DeletionTimestamp == nil {
			refs, _ := specRefs(o.Spec)
			h.named = slices.ContainsFunc(refs, func(r boundRef) bool { return r.ref == ref })
		}
		if h.recorded || h.named {
			out = append(out, h)
		}
	}
	return out
}

// annotationConflict refuses a NEG name that a Service's NEG annotation names as a custom name.
func (c *Controller) annotationConflict(name string) *refusal {
	objs, err := c.svcIndexer.ByIndex(customNameIndex, name)
	if err != nil || len(objs) == 0 {
		return nil
	}
	var svcs []string
	for _, o := range objs {
		if k, err := cache.ObjectToName(o); err == nil {
			svcs = append(svcs, k.String())
		}
	}
	slices.Sort(svcs)
	return &refusal{ReasonNEGConflict, fmt.Sprintf(
		"NEG %q is named by the NEG annotation of Service %s; a NEG is either annotation-driven or bound, not both",
		name, strings.Join(svcs, ", "))}
}

// record writes the status's NEG list when accepted NEGs are not in it yet: what a binding may
// have attached is recorded before the first call, so that its deletion (or a restart) knows
// what to detach.
func (c *Controller) record(ctx context.Context, s *bindingSync) error {
	if !slices.ContainsFunc(s.tasks, func(t *refTask) bool { return t.state == accepted && !t.recorded }) {
		return nil
	}
	st := s.b.Status
	st.NetworkEndpointGroups = statusNEGs(s.b, s.tasks, true)
	b, err := c.updateStatus(ctx, s.b, st)
	if err != nil {
		return err
	}
	if b != nil {
		s.b = b
	}
	return nil
}

// refresh makes the endpoints of the accepted and releasing NEGs known.
func (c *Controller) refresh(ctx context.Context, s *bindingSync) {
	parallel(s.tasks, func(t *refTask) {
		if t.state != accepted && t.state != releasing {
			return
		}
		c.refreshTask(ctx, s, t)
	})
}

// refreshTask lists one NEG's endpoints when they are unknown or due for a verify.
func (c *Controller) refreshTask(ctx context.Context, s *bindingSync, t *refTask) {
	now := c.clock.Now()
	if at := c.syncer.RetryAt(t.ref); now.Before(at) {
		s.requeueBy(at)
		t.known = c.syncer.Progress(t.ref, nil).Known
		return
	}
	verifyAt, err := c.syncer.Refresh(ctx, t.ref, s.key)
	switch {
	case gce.IsNotFound(err):
		klog.FromContext(ctx).Info("Bound NEG disappeared from GCE", "neg", t.ref.Name, "zone", t.ref.Zone)
		c.syncer.Forget(t.ref)
		c.negs.forget(t.ref)
		s.requeueBy(now)
	case err != nil:
		msg := fmt.Sprintf("Failed to list the endpoints of NEG %q in zone %q (will retry): %v", t.ref.Name, t.ref.Zone, err)
		s.requeueBy(c.syncer.Fail(t.ref, s.key, err, ReasonListFailed, msg))
		c.warn(s.b, ReasonListFailed+":"+t.ref.String(), ReasonListFailed, msg)
		t.err = err
	default:
		t.known = true
		if !verifyAt.IsZero() {
			s.requeueBy(verifyAt)
		}
	}
}

// desired fills the desired endpoints of the accepted NEGs from the Service port's
// EndpointSlices. When the Service or its port does not exist the accepted NEGs are left as
// they are (desired stays nil and apply skips them): a Service deleted and re-created, or a
// port renamed, never empties a load balancer's NEGs on the way.
func (c *Controller) desired(s *bindingSync) error {
	ref := s.b.Spec.BackendRef
	svc, err := c.services.Services(s.b.Namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		s.backendReason = ReasonBackendNotFound
		s.backendMessage = fmt.Sprintf("Service %s/%s does not exist; the bound NEGs are left as they are", s.b.Namespace, ref.Name)
		return nil
	}
	if err != nil {
		return err
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == ref.Port })
	if i < 0 {
		s.backendReason = ReasonPortNotFound
		s.backendMessage = fmt.Sprintf("Service %s/%s has no port %d; the bound NEGs are left as they are", s.b.Namespace, ref.Name, ref.Port)
		return nil
	}
	var negZones []string
	for _, t := range s.tasks {
		if t.state == accepted {
			negZones = append(negZones, t.ref.Zone)
		}
	}
	slices.Sort(negZones)
	negZones = slices.Compact(negZones)
	sl, err := c.slices.EndpointSlices(s.b.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: ref.Name}))
	if err != nil {
		return fmt.Errorf("listing EndpointSlices: %w", err)
	}
	nodeList, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	ns := make([]zones.Node, 0, len(nodeList))
	for _, n := range nodeList {
		ns = append(ns, zones.FromNode(n))
	}
	// Bound NEGs are GCE_VM_IP_PORT NEGs (rules.go), which take the Service's families. An
	// IPv6-only Service without IPv6-only NEGs gets empty NEGs, as with the annotation.
	stack, _ := endpoints.StackOf(svc, c.cfg.DualStackNEG, c.cfg.IPv6OnlyNEG)
	r := endpoints.Desired(svc.Spec.Ports[i].Name, sl, zones.ByName(ns), negZones, stack)
	for _, t := range s.tasks {
		if t.state == accepted {
			t.desired, t.waiting = r.ByZone[t.ref.Zone], r.Waiting[t.ref.Zone]
			s.endpoints += t.desired.Len()
		}
	}
	c.warnSkipped(s, r.Skipped)
	return nil
}

// warnSkipped records (deduplicated) which endpoints of the port cannot be placed in a bound
// NEG: mostly endpoints in zones the binding has no NEG for.
func (c *Controller) warnSkipped(s *bindingSync, skipped map[endpoints.SkipReason]int) {
	var parts []string
	for r, n := range skipped {
		if !r.Informational() && n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r, n))
		}
	}
	if len(parts) == 0 {
		c.warnings.Changed(s.key, ReasonEndpointsSkipped, "")
		return
	}
	slices.Sort(parts)
	c.warn(s.b, ReasonEndpointsSkipped, ReasonEndpointsSkipped, fmt.Sprintf(
		"Some endpoints of Service %s port %d are in no bound NEG and are skipped (%s); %s=N counts endpoints in zones "+
			"the binding lists no NEG for", s.b.Spec.BackendRef.Name, s.b.Spec.BackendRef.Port, strings.Join(parts, ", "),
		endpoints.SkipZoneWithoutNEG))
}

// apply starts the calls of every accepted NEG (when the Service port is there) and every
// releasing NEG, and reads back their progress.
func (c *Controller) apply(ctx context.Context, s *bindingSync) {
	for _, t := range s.tasks {
		switch {
		case !t.known:
			continue
		case t.state == accepted && s.backendReason == "":
			c.applyTask(ctx, s, t, t.desired)
		case t.state == releasing:
			c.applyTask(ctx, s, t, nil)
		}
	}
}

func (c *Controller) applyTask(ctx context.Context, s *bindingSync, t *refTask, desired neg.EndpointSet) {
	var waiting neg.EndpointSet
	if desired != nil {
		waiting = t.waiting
	}
	out := c.syncer.Apply(ctx, negsync.Request{Ref: t.ref, Owner: s.key, Desired: desired, Waiting: waiting})
	if !out.ResumeAt.IsZero() {
		s.requeueBy(out.ResumeAt)
	}
	t.progress = c.syncer.Progress(t.ref, desired)
	if t.progress.Settled() {
		c.syncer.ClearFailure(t.ref)
	} else if f, ok := c.syncer.Failure(t.ref); ok {
		t.failure = f.Message
	}
	if out.OverCapacity > 0 {
		c.warn(s.b, "capacity:"+t.ref.String(), ReasonEndpointsSkipped, fmt.Sprintf(
			"NEG %q in zone %q is full: %d endpoint(s) are not attached", t.ref.Name, t.ref.Zone, out.OverCapacity))
	}
}

// release forgets the NEGs that left the binding — released (empty now) and dropped ones,
// whose status entries writeStatus has removed — and the claims of refused ones.
func (c *Controller) release(s *bindingSync) {
	keep := map[neg.Ref]bool{}
	for _, t := range s.tasks {
		switch {
		case t.state == releasing && t.progress.Settled():
			c.normal(s.b, ReasonReleased, fmt.Sprintf("NEG %q in zone %q left the binding; its endpoints were detached",
				t.ref.Name, t.ref.Zone))
			c.syncer.Forget(t.ref)
		case t.state == dropped:
			c.syncer.Forget(t.ref)
		case t.state == accepted, t.state == releasing, t.state == unknown:
			keep[t.ref] = true
		}
	}
	for _, ref := range c.claims.release(s.key, keep) {
		c.syncer.Forget(ref)
	}
}

// forget drops everything kept about a binding that is gone.
func (c *Controller) forget(key cache.ObjectName) {
	for _, ref := range c.claims.release(key, nil) {
		c.syncer.Forget(ref)
	}
	c.warnings.Keep(key, nil)
	c.mu.Lock()
	delete(c.changed, key)
	delete(c.deletingSince, key)
	c.mu.Unlock()
}
