package controller

import (
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/backends"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// BackendServices is what the controller needs of the backend service reconciler
// (backends.Reconciler, controller.autoneg.dev/neg): it is told the wanted backends after every
// sync, asked whether it still holds a NEG as a backend before the NEG is deleted, and run beside
// the NEG workers.
type BackendServices interface {
	Update(w backends.Want)
	Holds(key cache.ObjectName, ref neg.Ref) bool
	Run(ctx context.Context)
	Idle(horizon time.Duration) bool
}

// BackendHooks is what the controller gives the backend service reconciler it is handed
// (Config.NewBackends): the two ways the reconciler calls back into the controller.
type BackendHooks struct {
	// Events records the reconciler's events with the controller's recorder and warning memory
	// (a warning is recorded once per Service and slot until cleared).
	Events backends.Events
	// Requeue queues a sync of the Service; the reconciler calls it after a reconcile that left
	// NEGs of the Service out of every backend service (backends.Config.OnReleased), so that the
	// sync may delete them.
	Requeue func(key cache.ObjectName)
}

// initBackends builds the backend service reconciler with Config.NewBackends, when set.
func (c *Controller) initBackends() error {
	if c.cfg.NewBackends == nil {
		return nil
	}
	b, err := c.cfg.NewBackends(BackendHooks{Events: backendEvents{c}, Requeue: c.queue.Add})
	if err != nil {
		return err
	}
	c.backends = b
	return nil
}

// runBackends runs the backend service reconciler, if enabled, until ctx is done.
func (c *Controller) runBackends(ctx context.Context) {
	if c.backends != nil {
		c.backends.Run(ctx)
	}
}

// syncBackends hands what the sync of s learnt to the backend service reconciler: the NEGs of
// every wanted port with the zones where they exist and are ours (as in neg-status), and every
// NEG of ours the Service owns. It is called after the NEGs were ensured; the reconciler only
// acts when this changed or its periodic verify is due.
func (c *Controller) syncBackends(s *serviceSync, tasks []*negTask) {
	if c.backends == nil {
		return
	}
	for _, t := range tasks {
		if c.creates.inFlight(t.ref) {
			// NEGs of the Service are being inserted; the insert ending re-syncs it. Waiting
			// hands the reconciler every zone at once: one backend service update, not one
			// per zone.
			return
		}
	}
	w := backends.Want{Key: s.key, Service: s.svc, Target: s.target, NEGs: map[int32]backends.PortNEGs{}}
	for port, p := range s.want {
		w.NEGs[port] = backends.PortNEGs{Name: p.Name}
	}
	for _, t := range tasks {
		if t.remove {
			continue
		}
		pn, ok := w.NEGs[t.port.Port]
		if ok && c.serves(s, t, c.index.Get(t.ref)) && !slices.Contains(pn.Zones, t.ref.Zone) {
			pn.Zones = append(pn.Zones, t.ref.Zone)
			w.NEGs[t.port.Port] = pn
		}
	}
	for ref := range c.index.OwnedBy(s.key) {
		w.Owned = append(w.Owned, ref)
	}
	c.backends.Update(w)
}

// backendsHold reports whether the NEG of t must not be deleted yet because it may still be a
// backend of a backend service the reconciler manages for the Service; the reconciler removes
// it first and then requeues the Service (the requeue here is only a safety net).
func (c *Controller) backendsHold(ctx context.Context, s *serviceSync, t *negTask) bool {
	if c.backends == nil || !c.backends.Holds(s.key, t.ref) {
		return false
	}
	klog.FromContext(ctx).V(2).Info("NEG still a backend of a managed backend service; deleting it later", "neg", t.ref.Name, "zone", t.ref.Zone)
	s.requeueBy(c.clock.Now().Add(c.cfg.Backoff.Later))
	return true
}

// backendEvents implements backends.Events with the controller's recorder and warning memory.
type backendEvents struct{ c *Controller }

func (e backendEvents) Warn(key cache.ObjectName, target *corev1.Service, slot, reason, msg string) {
	e.c.warn(key, target, slot, reason, msg)
}

func (e backendEvents) Clear(key cache.ObjectName, slot string) { e.c.warnings.Clear(key, slot) }

func (e backendEvents) Normal(target *corev1.Service, reason, msg string) {
	e.c.normal(target, reason, msg)
}
