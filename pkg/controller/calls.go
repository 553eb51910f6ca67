package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negsync"
	"github.com/neg-controller/neg-controller/pkg/plan"
)

// callsDone is the Syncer's report of a finished group of calls (negsync.Config.OnDone): it
// records the events, the propagation metric and the index change of a NEG found gone, and
// syncs the Service again — at once, or after the NEG's backoff when a call failed.
func (c *Controller) callsDone(d negsync.Done) {
	if d.Gone {
		c.index.Remove(d.Ref)
	}
	svc, err := c.services.Services(d.Owner.Namespace).Get(d.Owner.Name)
	if err != nil {
		svc = nil
	}
	target := eventTarget(d.Owner, svc)
	verb, prep, reason, failReason := "Attached", "to", ReasonAttach, ReasonAttachFailed
	if d.Op == plan.Detach {
		verb, prep, reason, failReason = "Detached", "from", ReasonDetach, ReasonDetachFailed
	}
	if d.Succeeded > 0 {
		c.normal(target, reason, fmt.Sprintf("%s %d network endpoint(s) %s NEG %q in zone %q",
			verb, d.Succeeded, prep, d.Ref.Name, d.Ref.Zone))
		if !d.ChangedAt.IsZero() {
			c.cfg.Metrics.ObservePropagation(string(d.Op), c.clock.Since(d.ChangedAt))
		}
	}
	if d.Failed > 0 && gce.Classify(d.Err) != gce.Canceled {
		c.recorder.Event(target, corev1.EventTypeWarning, failReason, fmt.Sprintf(
			"Failed to %s %d network endpoint(s) %s NEG %q in zone %q (will retry): %v",
			d.Op, d.Failed, prep, d.Ref.Name, d.Ref.Zone, d.Err))
	}
	if len(d.Invalid) > 0 {
		c.recorder.Event(target, corev1.EventTypeWarning, ReasonInvalidEndpoint, fmt.Sprintf(
			"GCE rejected %d network endpoint(s) of NEG %q in zone %q as invalid; they are skipped for %s (%s): %v",
			len(d.Invalid), d.Ref.Name, d.Ref.Zone, c.cfg.InvalidEndpointRetry, neg.Sample(d.Invalid, 5), d.InvalidErr))
	}
	if d.Err != nil && !d.Gone {
		c.queue.AddAfter(d.Owner, max(d.RetryAt.Sub(c.clock.Now()), 0))
		return
	}
	c.queue.Add(d.Owner)
}
