package controller

import (
	"fmt"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
	"github.com/neg-controller/neg-controller/pkg/wanted"
)

// observeSvcNEG gathers what the sync knows about the NEGs of one wanted port, per zone, and sums
// it up (svcneg.Observe).
func (c *Controller) observeSvcNEG(s *serviceSync, tasks []*negTask, desired map[int32]map[string]neg.EndpointSet,
	p wanted.Port) svcneg.Observed {
	var zs []svcneg.ZoneNEG
	for _, t := range tasks {
		if t.remove || t.port.Port != p.Port || t.ref.Name != p.Name {
			continue
		}
		z := svcneg.ZoneNEG{Active: t.active}
		e := c.index.Get(t.ref)
		if !c.serves(s, t, e) {
			if t.active {
				z.Problem = c.missingNEGMessage(t, e)
			}
			zs = append(zs, z)
			continue
		}
		z.NEG = &svcneg.NegObjectReference{ID: e.NEG.ID, SelfLink: e.NEG.SelfLink, NetworkEndpointType: e.NEG.Type}
		var eps neg.EndpointSet
		if t.active {
			eps = desired[p.Port][t.ref.Zone]
		}
		pr := c.negs.Progress(t.ref, eps)
		z.Settled = pr.Settled()
		switch {
		case pr.Excess > 0:
			z.Problem = fmt.Sprintf("NEG %q in zone %q is full (%d endpoints): %d endpoint(s) are not attached",
				t.ref.Name, t.ref.Zone, c.cfg.MaxEndpointsPerNEG, pr.Excess)
		case pr.Failures > 0 && !pr.Settled():
			z.Problem = c.failingNEGMessage(t.ref, pr.Failures)
		}
		zs = append(zs, z)
	}
	return svcneg.Observe(zs, c.unmappedHint(s, "No zone has a node that can receive load-balanced traffic "+
		"(Ready and not excluded from load balancers); NEGs are created in the zones of such nodes"))
}

// missingNEGMessage says why the NEG of an active task does not exist (or is not usable).
func (c *Controller) missingNEGMessage(t *negTask, e *negindex.Entry) string {
	if e != nil {
		return fmt.Sprintf("NEG %q in zone %q exists but was not created for this Service port (see the %s event); it is not used",
			t.ref.Name, t.ref.Zone, ReasonNEGNotOwned)
	}
	if f, ok := c.negs.Failure(t.ref); ok {
		return f.Message
	}
	return fmt.Sprintf("NEG %q in zone %q does not exist yet", t.ref.Name, t.ref.Zone)
}

// failingNEGMessage says why an existing NEG is not in sync after failed calls.
func (c *Controller) failingNEGMessage(ref neg.Ref, failures int) string {
	if f, ok := c.negs.Failure(ref); ok {
		return f.Message
	}
	return fmt.Sprintf("NEG %q in zone %q: %d call(s) in a row failed, retrying with backoff "+
		"(the Service's %s and %s events give the errors)", ref.Name, ref.Zone, failures, ReasonAttachFailed, ReasonDetachFailed)
}

// forgetNEGFailures drops the failure messages the sync made stale: those of NEGs that are
// ready (or gone), and every one of a Service without tasks.
func (c *Controller) forgetNEGFailures(key cache.ObjectName, tasks []*negTask) {
	if tasks == nil {
		c.negs.ClearFailures(key)
		return
	}
	for _, t := range tasks {
		if (t.ready && !t.remove) || c.index.Get(t.ref) == nil && !t.active {
			c.negs.ClearFailure(t.ref)
		}
	}
}

// negsRemain reports whether a NEG called name is still being removed for the Service: it
// exists and was not kept because a backend service uses it.
func (c *Controller) negsRemain(tasks []*negTask, name string) bool {
	for _, t := range tasks {
		if t.ref.Name != name || c.index.Get(t.ref) == nil {
			continue
		}
		if f, _ := c.negs.Failure(t.ref); f.Reason != ReasonNEGInUse {
			return true
		}
	}
	return false
}
