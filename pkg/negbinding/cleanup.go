package negbinding

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// cleanup handles a binding being deleted: it detaches every endpoint of the NEGs its status
// records, then removes the finalizer. It never blocks the binding's deletion — or its
// namespace's — for long:
//
//	a recorded NEG is done when   it holds no endpoint (known, nothing in flight), or GCE says
//	                              it does not exist, or another binding manages it, or it is no
//	                              longer safe to touch (judge)
//	all done                      finalizer removed (Normal CleanedUp when something was detached)
//	the deadline passed           finalizer removed anyway (Warning CleanupTimedOut naming the NEGs
//	                              that may still hold endpoints): a GCE outage, a revoked
//	                              permission or a NEG that cannot be read delays a namespace's
//	                              deletion by at most the timeout
//	otherwise                     BackendRefAttached False/Detaching; synced again after the
//	                              NEG's backoff or the calls, at the latest at the deadline
//
// The deadline is deletionTimestamp + Config.CleanupTimeout, or — when the controller first
// sees the deletion later than that (it was down) — that moment plus the timeout, at most a
// minute: a restarted controller still gets its detach calls a chance to finish.
//
// Only endpoints the status records NEGs for are detached: a NEG the binding never recorded
// was never called.
func (c *Controller) cleanup(ctx context.Context, b *NetworkEndpointGroupBinding) (time.Duration, error) {
	key := cache.MetaObjectToName(b)
	if !slices.Contains(b.Finalizers, Finalizer) {
		c.forget(key)
		return 0, nil
	}
	now := c.clock.Now()
	s := &bindingSync{b: b, key: key}
	for _, r := range statusRefs(b) {
		s.tasks = append(s.tasks, &refTask{ref: r, recorded: true})
	}
	parallel(s.tasks, func(t *refTask) {
		c.judgeTask(ctx, s, t)
		if t.state == releasing {
			c.refreshTask(ctx, s, t)
		}
	})
	var remaining []string
	detached := false
	for _, t := range s.tasks {
		if t.state == releasing && t.known {
			c.applyTask(ctx, s, t, nil)
		}
		switch {
		case t.state == dropped, t.state == refused:
		case t.state == releasing && t.progress.Settled():
			detached = true
		default:
			remaining = append(remaining, t.ref.String())
		}
	}
	logger := klog.FromContext(ctx)
	deadline := c.cleanupDeadline(key, b.DeletionTimestamp.Time, now)
	switch {
	case len(remaining) == 0:
		logger.Info("Binding deleted; its endpoints are detached, removing the finalizer")
		if detached {
			c.normal(b, ReasonCleanedUp, "The endpoints this binding attached are detached; the NEGs are left in place")
		}
	case !now.Before(deadline):
		msg := fmt.Sprintf("The endpoints of NEG(s) %s could not all be detached within %s of the binding's deletion; "+
			"the finalizer is removed anyway so the binding can go. The NEGs may still hold endpoints: check them "+
			"(gcloud compute network-endpoint-groups list-network-endpoints)", strings.Join(remaining, ", "), c.cfg.CleanupTimeout)
		logger.Info("Cleanup timed out; removing the finalizer", "remaining", remaining)
		c.recorder.Event(reference(b), corev1.EventTypeWarning, ReasonCleanupTimedOut, msg)
	default:
		st := withConditions(b, statusNEGs(b, s.tasks, false), condition(ConditionBackendRefAttached, false, ReasonDetaching,
			fmt.Sprintf("The binding is being deleted: detaching the endpoints of %s (at most until %s)",
				strings.Join(remaining, ", "), deadline.UTC().Format(time.RFC3339))))
		s.requeueBy(deadline)
		err := c.writeStatus(ctx, b, st)
		return max(s.requeueAt.Sub(now), time.Millisecond), err
	}
	if err := c.removeFinalizer(ctx, b); err != nil {
		return 0, err
	}
	for _, t := range s.tasks {
		c.syncer.Forget(t.ref)
	}
	c.forget(key)
	return 0, nil
}

// cleanupDeadline returns when the cleanup of binding key, deleted at deleted, gives up (see
// cleanup), remembering when this process first saw the deletion.
func (c *Controller) cleanupDeadline(key cache.ObjectName, deleted, now time.Time) time.Time {
	c.mu.Lock()
	seen, ok := c.deletingSince[key]
	if !ok {
		seen = now
		c.deletingSince[key] = now
	}
	c.mu.Unlock()
	return maxTime(deleted.Add(c.cfg.CleanupTimeout), seen.Add(min(c.cfg.CleanupTimeout, time.Minute)))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
