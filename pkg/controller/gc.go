package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
)

// runGC is the garbage collector: GCInitialDelay after the start, then every GCPeriod, it
// re-lists the NEGs of the project into the index and enqueues every Service that owns a NEG
// it no longer wants — including Services deleted while the controller was down, which no
// informer event will ever report. The sync of such a Service detaches the endpoints and
// deletes the NEGs, re-checking against the current Service just before; GC itself never
// deletes anything.
func (c *Controller) runGC(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("gc")
	ctx = klog.NewContext(ctx, logger)
	delay := c.cfg.GCInitialDelay
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(delay):
		}
		delay = c.cfg.GCPeriod
		if err := c.collectGarbage(ctx); err != nil {
			logger.Error(err, "Garbage collection failed; retrying next period", "period", c.cfg.GCPeriod)
		}
	}
}

// collectGarbage runs one garbage-collection pass.
func (c *Controller) collectGarbage(ctx context.Context) error {
	if err := c.refreshIndex(ctx); err != nil {
		return err
	}
	n := 0
	for _, key := range c.index.owners() {
		svc, err := c.services.Services(key.Namespace).Get(key.Name)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err != nil {
			svc = nil
		}
		want, werr := c.wantedNEGs(svc)
		if werr != nil {
			continue // a rejected configuration keeps its NEGs as they are
		}
		for ref, e := range c.index.ownedBy(key) {
			port, ok := descPort(e.desc)
			if p, wanted := want[port]; !ok || !wanted || p.name != ref.Name {
				klog.FromContext(ctx).V(2).Info("NEG no longer wanted", "service", klog.KRef(key.Namespace, key.Name), "neg", ref.Name, "zone", ref.Zone)
				c.queue.Add(key)
				n++
				break
			}
		}
	}
	klog.FromContext(ctx).V(2).Info("Garbage collection pass done", "servicesEnqueued", n)
	return nil
}
