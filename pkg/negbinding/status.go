package negbinding

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// maxMessage bounds a condition message (the API allows 32 KiB; people read it).
const maxMessage = 2000

// condition returns a condition of type t (its transition time and generation are set when
// it is put into a status).
func condition(t string, ok bool, reason, msg string) metav1.Condition {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-1] + "…"
	}
	return metav1.Condition{Type: t, Status: st, Reason: reason, Message: msg}
}

// withConditions returns b's status with negs as its NEG list and conds set (a condition keeps
// its transition time while its status does not change), for b's generation.
func withConditions(b *NetworkEndpointGroupBinding, negs []StatusNEGRef, conds ...metav1.Condition) Status {
	st := Status{LastSyncTime: b.Status.LastSyncTime, NetworkEndpointGroups: negs,
		Conditions: slices.Clone(b.Status.Conditions)}
	for _, cond := range conds {
		cond.ObservedGeneration = b.Generation
		meta.SetStatusCondition(&st.Conditions, cond)
	}
	return st
}

// statusNEGs returns the status's NEG list after a sync: accepted NEGs as GCE returned them,
// NEGs being released until they are empty, recorded NEGs that could not be read as they were.
// Before the calls (record), releasing NEGs are all kept.
func statusNEGs(b *NetworkEndpointGroupBinding, tasks []*refTask, beforeCalls bool) []StatusNEGRef {
	old := map[string]StatusNEGRef{}
	for _, s := range b.Status.NetworkEndpointGroups {
		if r, ok := refFromURL(s.ResourceURL); ok {
			old[r.String()] = s
		}
	}
	var out []StatusNEGRef
	for _, t := range tasks {
		keepOld := false
		switch t.state {
		case accepted:
			if t.neg != nil {
				out = append(out, StatusNEGRef{ResourceURL: t.neg.SelfLink, SubnetURL: t.neg.Subnetwork})
				continue
			}
			keepOld = true
		case releasing:
			keepOld = beforeCalls || !t.progress.Settled()
		case unknown:
			keepOld = true
		}
		if s, ok := old[t.ref.String()]; ok && keepOld {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b StatusNEGRef) int { return strings.Compare(a.ResourceURL, b.ResourceURL) })
	return out
}

// statusOf returns the status a sync leaves: the NEG list and both conditions.
func (c *Controller) statusOf(s *bindingSync) Status {
	return withConditions(s.b, statusNEGs(s.b, s.tasks, false), c.attachedCondition(s), c.acceptedCondition(s))
}

// acceptedCondition is NEGsAccepted: True when nothing of the spec was refused; False with
// every refusal (the reason of the first); Unknown while a NEG could not be read. It also
// records one Warning event per refused NEG name (deduplicated).
func (c *Controller) acceptedCondition(s *bindingSync) metav1.Condition {
	_, noZones := specRefs(s.b.Spec)
	var reasons, msgs []string
	byName := map[string][]string{}
	for _, name := range noZones {
		reasons = append(reasons, ReasonNoZones)
		m := fmt.Sprintf("NEG %q lists no zone", name)
		msgs = append(msgs, m)
		byName[name] = append(byName[name], m)
	}
	unread := 0
	for _, t := range s.tasks {
		if t.inSpec && t.state == unknown {
			unread++
		}
		if !t.inSpec || t.refusal == nil || t.state == accepted {
			continue
		}
		reasons = append(reasons, t.refusal.reason)
		msgs = append(msgs, t.refusal.message)
		byName[t.ref.Name] = append(byName[t.ref.Name], t.refusal.message)
	}
	slots := map[string]bool{ReasonEndpointsSkipped: true} // "spec" goes: the spec is valid now
	for _, t := range s.tasks {
		slots[ReasonListFailed+":"+t.ref.String()] = true
		slots["capacity:"+t.ref.String()] = true
	}
	for name, ms := range byName {
		slot := "refused:" + name
		slots[slot] = true
		reason := ReasonNoZones
		for _, t := range s.tasks {
			if t.ref.Name == name && t.refusal != nil && t.state != accepted {
				reason = t.refusal.reason
				break
			}
		}
		c.warn(s.b, slot, reason, strings.Join(ms, "; "))
	}
	c.warnings.Keep(s.key, slots)
	switch {
	case len(msgs) > 0:
		return condition(ConditionNEGsAccepted, false, reasons[0], strings.Join(msgs, "; "))
	case unread > 0:
		cond := condition(ConditionNEGsAccepted, false, ReasonListFailed, fmt.Sprintf("%d zonal NEG(s) could not be read from GCE yet", unread))
		cond.Status = metav1.ConditionUnknown
		return cond
	}
	return condition(ConditionNEGsAccepted, true, ReasonAccepted, "Every NEG of the binding is bound in every zone it lists")
}

// attachedCondition is BackendRefAttached (see the reason constants for the order).
func (c *Controller) attachedCondition(s *bindingSync) metav1.Condition {
	ref := s.b.Spec.BackendRef
	if s.backendReason != "" {
		return condition(ConditionBackendRefAttached, false, s.backendReason, s.backendMessage)
	}
	var failed, pending []string
	bound, refusedN := 0, 0
	for _, t := range s.tasks {
		switch {
		case t.state == accepted:
			bound++
			switch {
			case t.err != nil:
				failed = append(failed, t.err.Error())
			case t.progress.Settled():
			case t.failure != "":
				failed = append(failed, t.failure)
			default:
				pending = append(pending, t.ref.String())
			}
		case t.inSpec && t.state == unknown:
			failed = append(failed, fmt.Sprintf("NEG %q in zone %q could not be read: %v", t.ref.Name, t.ref.Zone, t.err))
		case t.inSpec:
			refusedN++
		}
	}
	_, noZones := specRefs(s.b.Spec)
	refusedN += len(noZones)
	switch {
	case len(failed) > 0:
		return condition(ConditionBackendRefAttached, false, ReasonSyncFailed, strings.Join(failed, "; "))
	case len(pending) > 0:
		return condition(ConditionBackendRefAttached, false, ReasonSyncing, fmt.Sprintf(
			"%d of %d bound NEG(s) are being brought in step with Service %s port %d: %s",
			len(pending), bound, ref.Name, ref.Port, strings.Join(pending, ", ")))
	case refusedN > 0:
		return condition(ConditionBackendRefAttached, false, ReasonNEGsRefused, fmt.Sprintf(
			"%d zonal NEG(s) hold the %d endpoint(s) of Service %s port %d, %d are refused (see condition %s)",
			bound, s.endpoints, ref.Name, ref.Port, refusedN, ConditionNEGsAccepted))
	}
	return condition(ConditionBackendRefAttached, true, ReasonAttached, fmt.Sprintf(
		"%d zonal NEG(s) hold the %d endpoint(s) of Service %s port %d", bound, s.endpoints, ref.Name, ref.Port))
}

// writeStatus writes st when it differs from b's status, setting lastSyncTime when it does or
// when calls on the binding's NEGs finished since the last write.
func (c *Controller) writeStatus(ctx context.Context, b *NetworkEndpointGroupBinding, st Status) error {
	key := cache.MetaObjectToName(b)
	c.mu.Lock()
	changed := c.changed[key]
	delete(c.changed, key)
	c.mu.Unlock()
	if !changed && apiequality.Semantic.DeepEqual(normalize(b.Status), normalize(st)) {
		return nil
	}
	st.LastSyncTime = metav1.NewTime(c.clock.Now()).Rfc3339Copy()
	if _, err := c.updateStatus(ctx, b, st); err != nil {
		if changed {
			c.mu.Lock()
			c.changed[key] = true
			c.mu.Unlock()
		}
		return err
	}
	return nil
}

// normalize makes empty lists nil, so that an absent and an empty list compare equal.
func normalize(st Status) Status {
	if len(st.Conditions) == 0 {
		st.Conditions = nil
	}
	if len(st.NetworkEndpointGroups) == 0 {
		st.NetworkEndpointGroups = nil
	}
	return st
}

// updateStatus writes st as b's status. It returns the binding as written, or nil when it is
// gone. On a conflict (the cache lags behind the controller's own last write) it writes st
// once more on the binding read afresh: the status is the controller's alone, and a change of
// the spec meanwhile queues another sync that recomputes it.
func (c *Controller) updateStatus(ctx context.Context, b *NetworkEndpointGroupBinding, st Status) (*NetworkEndpointGroupBinding, error) {
	nb := b.DeepCopy()
	nb.Status = st
	out, err := c.cfg.Client.UpdateStatus(ctx, nb)
	if apierrors.IsConflict(err) {
		var fresh *NetworkEndpointGroupBinding
		if fresh, err = c.cfg.Client.Get(ctx, b.Namespace, b.Name); err == nil {
			fresh.Status = st
			out, err = c.cfg.Client.UpdateStatus(ctx, fresh)
		}
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("updating the status of %s %s/%s: %w", Kind, b.Namespace, b.Name, err)
	}
	return out, nil
}

// ensureFinalizer adds the finalizer (before any call on a bound NEG). It returns the binding
// as written, or nil when it is gone.
func (c *Controller) ensureFinalizer(ctx context.Context, b *NetworkEndpointGroupBinding) (*NetworkEndpointGroupBinding, error) {
	if slices.Contains(b.Finalizers, Finalizer) {
		return b, nil
	}
	nb := b.DeepCopy()
	nb.Finalizers = append(nb.Finalizers, Finalizer)
	out, err := c.cfg.Client.Update(ctx, nb)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adding finalizer %s to %s %s/%s: %w", Finalizer, Kind, b.Namespace, b.Name, err)
	}
	return out, nil
}

// removeFinalizer removes the finalizer; a binding already gone is success.
func (c *Controller) removeFinalizer(ctx context.Context, b *NetworkEndpointGroupBinding) error {
	nb := b.DeepCopy()
	nb.Finalizers = slices.DeleteFunc(nb.Finalizers, func(f string) bool { return f == Finalizer })
	_, err := c.cfg.Client.Update(ctx, nb)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s from %s %s/%s: %w", Finalizer, Kind, b.Namespace, b.Name, err)
	}
	return nil
}
