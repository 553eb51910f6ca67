package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
)

// runGC is the garbage collector: GCInitialDelay after the start, then every GCPeriod, it
// re-lists the NEGs of the project into the index (which also finds NEGs deleted or whose size
// changed outside the controller; see refreshIndex) and enqueues every Service that owns a NEG
// it no longer wants — including Services deleted while the controller was down, which no
// informer event will ever report, and NEGs only zone pre-provisioning wanted (preprovision.go). The sync of such a Service detaches the endpoints and
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
	c.reportUnowned(ctx)
	n, unclaimed := 0, 0
	var nodes []*corev1.Node // listed when a pre-provisioned NEG is met (retiredOutsideSync)
	for _, key := range c.index.Owners() {
		svc, err := c.services.Services(key.Namespace).Get(key.Name)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if err != nil {
			svc = nil
		}
		want, src, werr := c.wants.NEGs(svc)
		if werr != nil {
			continue // a rejected configuration keeps its NEGs as they are
		}
		for ref, e := range c.index.OwnedBy(key) {
			if !c.claimed(svc, want, ref, e) {
				unclaimed++
				c.logUnownedOnce(ctx, ref, e, metrics.UnownedClaim)
				continue
			}
			port, ok := entryPort(svc, want, ref, e)
			p, isWanted := want[port]
			gone := !ok || !isWanted || p.Name != ref.Name
			if !gone && preprovisioned(e.NEG) {
				if nodes == nil {
					if nodes, err = c.nodes.List(labels.Everything()); err != nil {
						return err
					}
				}
				gone = c.retiredOutsideSync(svc, src, ref, e, nodes)
			}
			if gone {
				klog.FromContext(ctx).V(2).Info("NEG no longer wanted", "service", klog.KRef(key.Namespace, key.Name), "neg", ref.Name, "zone", ref.Zone)
				c.queue.Add(key)
				n++
				break
			}
		}
	}
	c.unclaimed.Store(int64(unclaimed))
	klog.FromContext(ctx).V(2).Info("Garbage collection pass done", "servicesEnqueued", n, "unclaimedCustomNEGs", unclaimed)
	return nil
}

// reportUnowned logs, once per NEG, the NEGs whose description names this cluster but that fail
// another ownership check (type, network, name): they are never touched.
func (c *Controller) reportUnowned(ctx context.Context) {
	_, list := c.index.Unowned()
	for _, e := range list {
		c.logUnownedOnce(ctx, e.NEG.Ref(), e, e.Verdict.UnownedReason())
	}
}

// logUnownedOnce logs that a NEG naming this cluster is left alone, the first time it is seen.
func (c *Controller) logUnownedOnce(ctx context.Context, ref neg.Ref, e negindex.Entry, reason string) {
	c.unownedMu.Lock()
	seen := c.unownedLogged[ref]
	c.unownedLogged[ref] = true
	c.unownedMu.Unlock()
	if seen {
		return
	}
	klog.FromContext(ctx).Info("NEG names this cluster but is not ours; it is never modified or deleted",
		"neg", ref.Name, "zone", ref.Zone, "reason", reason, "type", e.NEG.Type, "network", e.NEG.Network,
		"description", e.NEG.Description)
}

// unownedCounts is the unowned_negs metric source.
func (c *Controller) unownedCounts() map[string]int {
	counts, _ := c.index.Unowned()
	if n := c.unclaimed.Load(); n > 0 {
		counts[metrics.UnownedClaim] = int(n)
	}
	return counts
}
