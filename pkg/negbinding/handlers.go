package negbinding

import (
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// Index names. Each is distinct from the NEG controller's indexers on the shared informers.
const (
	// negNameIndex indexes bindings by the NEG names of their spec and status.
	negNameIndex = "negbinding/neg-name"
	// serviceIndex indexes bindings by namespace/Service of their backendRef.
	serviceIndex = "negbinding/service"
	// customNameIndex indexes Services by the custom NEG names of their NEG annotations.
	customNameIndex = "negbinding/custom-neg-name"
)

// defaultBucket is the overall rate limit of the queue (client-go's default for controllers).
func defaultBucket() *rate.Limiter { return rate.NewLimiter(rate.Limit(10), 100) }

// unwrap returns the object of a tombstone.
func unwrap(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// statusRefs returns the zonal NEGs a binding's status records, by name then zone (entries
// whose URL names no zonal NEG are left out).
func statusRefs(b *NetworkEndpointGroupBinding) []neg.Ref {
	var out []neg.Ref
	for _, s := range b.Status.NetworkEndpointGroups {
		if r, ok := refFromURL(s.ResourceURL); ok {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareRefs)
	return slices.Compact(out)
}

// refFromURL parses .../zones/ZONE/networkEndpointGroups/NAME.
func refFromURL(url string) (neg.Ref, bool) {
	var r neg.Ref
	parts := strings.Split(gce.ResourcePath(url), "/")
	for i := 0; i+1 < len(parts); i++ {
		switch parts[i] {
		case "zones":
			r.Zone = parts[i+1]
		case "networkEndpointGroups":
			r.Name = parts[i+1]
		}
	}
	return r, r.Zone != "" && r.Name != ""
}

// indexNEGNames indexes a binding by every NEG name of its spec and status.
func indexNEGNames(obj any) ([]string, error) {
	b, ok := obj.(*NetworkEndpointGroupBinding)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, r := range b.Spec.NetworkEndpointGroups {
		out = append(out, r.Name)
	}
	for _, r := range statusRefs(b) {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// indexService indexes a binding by namespace/name of its Service.
func indexService(obj any) ([]string, error) {
	b, ok := obj.(*NetworkEndpointGroupBinding)
	if !ok || b.Spec.BackendRef == nil || b.Spec.BackendRef.Name == "" {
		return nil, nil
	}
	return []string{b.Namespace + "/" + b.Spec.BackendRef.Name}, nil
}

// customNEGNames indexes a Service by the custom NEG names of its cloud.google.com/neg and
// solutions.cloud.google.com/hybrid-neg annotations (parsed only, not validated: a name written
// there is claimed even while the annotation is rejected for another reason).
func customNEGNames(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, key := range []string{annotation.NEGKey, annotation.HybridNEGKey} {
		v, ok := svc.Annotations[key]
		if !ok {
			continue
		}
		cfg, err := annotation.Parse(v)
		if err != nil {
			continue
		}
		for _, pc := range cfg.ExposedPorts {
			if pc.Name != "" {
				out = append(out, pc.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// onBinding queues the binding and every binding that shares a NEG name with it (a conflict may
// have been resolved), and tells readiness about its Service.
func (c *Controller) onBinding(obj any) {
	b, ok := unwrap(obj).(*NetworkEndpointGroupBinding)
	if !ok {
		return
	}
	key := cache.MetaObjectToName(b)
	c.queue.Add(key)
	names, _ := indexNEGNames(b)
	for _, n := range names {
		for _, o := range c.byIndex(negNameIndex, n) {
			if k := cache.MetaObjectToName(o); k != key {
				c.queue.Add(k)
			}
		}
	}
	if c.cfg.OnBoundChange != nil && b.Spec.BackendRef != nil {
		c.cfg.OnBoundChange(b.Namespace, b.Spec.BackendRef.Name)
	}
}

// onService queues the bindings of the Service, and those naming one of its custom NEG names.
func (c *Controller) onService(obj any) {
	svc, ok := unwrap(obj).(*corev1.Service)
	if !ok {
		return
	}
	c.enqueueService(svc.Namespace, svc.Name, 0)
	names, _ := customNEGNames(svc)
	for _, n := range names {
		for _, b := range c.byIndex(negNameIndex, n) {
			c.queue.Add(cache.MetaObjectToName(b))
		}
	}
}

// onSlice queues the bindings of the slice's Service, after SyncDelay (coalescing churn).
func (c *Controller) onSlice(obj any) {
	s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
		c.enqueueService(s.Namespace, svc, c.cfg.SyncDelay)
	}
}

// enqueueService queues the bindings of Service namespace/name after delay.
func (c *Controller) enqueueService(namespace, name string, delay time.Duration) {
	for _, b := range c.byIndex(serviceIndex, namespace+"/"+name) {
		c.queue.AddAfter(cache.MetaObjectToName(b), delay)
	}
}

// onNode queues every binding: a node came or went, so endpoints may move between zones.
func (c *Controller) onNode(obj any) {
	if _, ok := unwrap(obj).(*corev1.Node); ok {
		c.enqueueAll()
	}
}

// onNodeUpdate queues every binding when the node's zone or instance changed.
func (c *Controller) onNodeUpdate(old, obj any) {
	o, ok1 := old.(*corev1.Node)
	n, ok2 := obj.(*corev1.Node)
	if ok1 && ok2 {
		a, b := zones.FromNode(o), zones.FromNode(n)
		if a.Zone == b.Zone && a.Instance == b.Instance {
			return
		}
	}
	c.enqueueAll()
}

// enqueueAll queues every binding after SyncDelay.
func (c *Controller) enqueueAll() {
	inf := c.informer()
	if inf == nil {
		return
	}
	for _, o := range inf.GetStore().List() {
		if b, ok := o.(*NetworkEndpointGroupBinding); ok {
			c.queue.AddAfter(cache.MetaObjectToName(b), c.cfg.SyncDelay)
		}
	}
}
