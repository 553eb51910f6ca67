package negbinding

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negsync"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// reference is what events are recorded on.
func reference(b *NetworkEndpointGroupBinding) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: GroupVersion.String(), Kind: Kind, Namespace: b.Namespace,
		Name: b.Name, UID: b.UID, ResourceVersion: b.ResourceVersion}
}

// warn records a Warning event on b unless the same message was the last one of the slot.
func (c *Controller) warn(b *NetworkEndpointGroupBinding, slot, reason, msg string) {
	if c.warnings.Changed(cache.MetaObjectToName(b), slot, msg) {
		c.recorder.Event(reference(b), corev1.EventTypeWarning, reason, msg)
	}
}

// normal records a Normal event on b.
func (c *Controller) normal(b *NetworkEndpointGroupBinding, reason, msg string) {
	c.recorder.Event(reference(b), corev1.EventTypeNormal, reason, msg)
}

// callsDone is the Syncer's report of a finished group of calls: events on the binding, the
// binding's status to be refreshed with lastSyncTime, and another sync — at once, or after the
// NEG's backoff when a call failed.
func (c *Controller) callsDone(d negsync.Done) {
	if d.Gone {
		c.negs.forget(d.Ref)
	}
	c.mu.Lock()
	c.changed[d.Owner] = true
	c.mu.Unlock()
	b := c.binding(d.Owner)
	verb, prep, reason, failReason := "Attached", "to", ReasonAttach, ReasonAttachFailed
	if d.Op == plan.Detach {
		verb, prep, reason, failReason = "Detached", "from", ReasonDetach, ReasonDetachFailed
	}
	if b != nil && d.Succeeded > 0 {
		c.normal(b, reason, fmt.Sprintf("%s %d network endpoint(s) %s NEG %q in zone %q",
			verb, d.Succeeded, prep, d.Ref.Name, d.Ref.Zone))
	}
	if d.Failed > 0 && gce.Classify(d.Err) != gce.Canceled {
		msg := fmt.Sprintf("Failed to %s %d network endpoint(s) %s NEG %q in zone %q (will retry): %v",
			d.Op, d.Failed, prep, d.Ref.Name, d.Ref.Zone, d.Err)
		c.syncer.Note(d.Ref, d.Owner, failReason, msg)
		if b != nil {
			c.recorder.Event(reference(b), corev1.EventTypeWarning, failReason, msg)
		}
	}
	if len(d.Invalid) > 0 && b != nil {
		c.recorder.Event(reference(b), corev1.EventTypeWarning, failReason, fmt.Sprintf(
			"GCE rejected %d network endpoint(s) of NEG %q in zone %q as invalid; they are skipped for a while (%s): %v",
			len(d.Invalid), d.Ref.Name, d.Ref.Zone, neg.Sample(d.Invalid, 5), d.InvalidErr))
	}
	if d.Err != nil && !d.Gone {
		c.queue.AddAfter(d.Owner, max(d.RetryAt.Sub(c.clock.Now()), 0))
		return
	}
	c.queue.Add(d.Owner)
}
