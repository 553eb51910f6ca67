package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/wanted"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// sliceServiceIndex indexes EndpointSlices by "namespace/service" (their service-name label), so
// a sync finds its Service's slices without matching every slice of the namespace.
const sliceServiceIndex = "sliceService"

func sliceServiceOf(obj any) ([]string, error) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || es.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, nil
	}
	return []string{es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]}, nil
}

// registerHandlers wires the informers the controller needs. Handlers only turn events into
// Service keys; all work happens in sync.
func (c *Controller) registerHandlers(f informers.SharedInformerFactory) error {
	svcInf := f.Core().V1().Services()
	if err := svcInf.Informer().AddIndexers(cache.Indexers{wanted.CustomNameIndex: wanted.IndexCustomNames}); err != nil {
		return fmt.Errorf("controller: adding Service indexer: %w", err)
	}
	sliceInf := f.Discovery().V1().EndpointSlices()
	if err := sliceInf.Informer().AddIndexers(cache.Indexers{sliceServiceIndex: sliceServiceOf}); err != nil {
		return fmt.Errorf("controller: adding EndpointSlice indexer: %w", err)
	}
	nodeInf := f.Core().V1().Nodes()
	ingInf := f.Networking().V1().Ingresses()
	c.services, c.svcIndexer = svcInf.Lister(), svcInf.Informer().GetIndexer()
	c.slices = sliceInf.Informer().GetIndexer()
	c.nodes = nodeInf.Lister()
	c.ingresses = ingInf.Lister()

	regs := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.onService(nil, o) },
			UpdateFunc: c.onService,
			DeleteFunc: func(o any) { c.onService(o, nil) },
		}},
		{sliceInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onSlice,
			UpdateFunc: func(old, cur any) { c.onSlice(old); c.onSlice(cur) },
			DeleteFunc: c.onSlice,
		}},
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { c.onNode() },
			UpdateFunc: func(old, cur any) { c.onNodeUpdate(old, cur) },
			DeleteFunc: func(o any) { c.onNode() },
		}},
		{ingInf.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onIngress,
			UpdateFunc: func(old, cur any) { c.onIngress(old); c.onIngress(cur) },
			DeleteFunc: c.onIngress,
		}},
	}
	for _, r := range regs {
		reg, err := r.inf.AddEventHandler(r.h)
		if err != nil {
			return fmt.Errorf("controller: adding event handler: %w", err)
		}
		c.cacheSynced = append(c.cacheSynced, reg.HasSynced)
	}
	return nil
}

// unwrap returns the object inside a tombstone, or obj itself.
func unwrap(obj any) any {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return t.Obj
	}
	return obj
}

// onService enqueues the Service, and every other Service that claims one of the custom NEG
// names it claims (or claimed), so a name conflict is re-decided when either side changes.
func (c *Controller) onService(old, cur any) {
	names := map[string]bool{}
	for _, o := range []any{old, cur} {
		svc, ok := unwrap(o).(*corev1.Service)
		if !ok || svc == nil {
			continue
		}
		c.queue.Add(cache.MetaObjectToName(svc))
		for _, n := range wanted.ClaimedNames(svc) {
			names[n] = true
		}
	}
	for n := range names {
		c.enqueueClaimants(n)
	}
}

// onSlice enqueues the slice's Service (after SyncDelay, by default none), if it is a Service
// the controller cares about.
func (c *Controller) onSlice(obj any) {
	s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok || s == nil {
		return
	}
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	key := cache.ObjectName{Namespace: s.Namespace, Name: name}
	if c.caresAbout(key) {
		c.changes.Observe(key, c.clock.Now())
		c.queue.AddAfter(key, c.cfg.SyncDelay)
	}
}

// caresAbout reports whether key is a Service with a NEG annotation or with NEGs of ours.
func (c *Controller) caresAbout(key cache.ObjectName) bool {
	if svc, err := c.services.Services(key.Namespace).Get(key.Name); err == nil && hasNEGAnnotation(svc) {
		return true
	}
	return len(c.index.OwnedBy(key)) > 0
}

// hasNEGAnnotation reports whether svc has cloud.google.com/neg or
// solutions.cloud.google.com/hybrid-neg (valid or not).
func hasNEGAnnotation(svc *corev1.Service) bool {
	_, ok, _ := annotation.SourceOf(svc, false)
	return ok
}

// onNodeUpdate reacts only when the node's zone, instance or candidacy changed, for GCE NEGs
// or (by the zone mapping) for hybrid NEGs.
func (c *Controller) onNodeUpdate(old, cur any) {
	o, ok1 := unwrap(old).(*corev1.Node)
	n, ok2 := unwrap(cur).(*corev1.Node)
	m := c.cfg.Hybrid.Zones
	if ok1 && ok2 && zones.FromNode(o) == zones.FromNode(n) && m.FromNode(o) == m.FromNode(n) {
		return
	}
	c.onNode()
}

// onNode enqueues every NEG Service after a node was added, removed, or changed zone, instance
// or candidacy. Endpoint mapping depends on every node; NEG zones depend on candidates.
func (c *Controller) onNode() {
	c.placements.Invalidate()
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if hasNEGAnnotation(svc) {
			c.queue.AddAfter(cache.MetaObjectToName(svc), c.cfg.SyncDelay)
		}
	}
}

// onIngress enqueues every Service the Ingress references.
func (c *Controller) onIngress(obj any) {
	ing, ok := unwrap(obj).(*networkingv1.Ingress)
	if !ok || ing == nil {
		return
	}
	for _, name := range wanted.IngressServiceNames(ing) {
		c.queue.Add(cache.ObjectName{Namespace: ing.Namespace, Name: name})
	}
}
