package app

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/negstatus"
	negready "github.com/neg-controller/neg-controller/pkg/readiness"
)

// trimForCache is the informer factory's transform: it drops what no part of the controller
// reads before an object enters the caches, which is most of a pod. Every object loses its
// managedFields (a Service keeps the entries owning neg-status). Only the readiness reflector
// reads pods: a pod it has work for (readiness.NeedsWork: gated, condition not True, not
// terminating) keeps its metadata (without annotations), node, readiness gates, container names
// and ports (to resolve named target ports) and the status fields the reflector reads; any other
// pod is cached as its namespace, name and resource version only (readiness.PodMetadata), which
// in a cluster whose pods wait on no gate is most of the pod cache gone. An EndpointSlice keeps
// what pkg/endpoints and the handlers read (see trimSlice). A node loses its image list. Nothing
// is ever written back from a cached object (pod conditions are strategic-merge patches of one
// condition), so trimming cannot erase anything in the apiserver.
func trimForCache(obj any) (any, error) {
	if _, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return obj, nil
	}
	if svc, ok := obj.(*corev1.Service); ok {
		svc.ManagedFields = statusManagers(svc.ManagedFields)
	} else if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		if !negready.NeedsWork(o) {
			return negready.PodMetadata(o), nil
		}
		trimPod(o)
	case *discoveryv1.EndpointSlice:
		trimSlice(o)
	case *corev1.Node:
		o.Status.Images = nil
	}
	return obj, nil
}

// statusManagers keeps the managedFields entries that own the neg-status or hybrid-neg-status
// annotation, with only the manager's name and those fields: the controller checks that no other controller writes it
// (negstatus.Writers).
func statusManagers(mfs []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	var out []metav1.ManagedFieldsEntry
	for _, mf := range mfs {
		if len(negstatus.OwnedKeys(mf)) == 0 {
			continue
		}
		out = append(out, metav1.ManagedFieldsEntry{Manager: mf.Manager, Operation: mf.Operation,
			FieldsType: mf.FieldsType, FieldsV1: metav1.NewFieldsV1(statusFieldsV1(negstatus.OwnedKeys(mf)))})
	}
	return out
}

// statusFieldsV1 is the field set owning only the given status annotations.
func statusFieldsV1(keys []string) string {
	fields := map[string]map[string]map[string]struct{}{"f:metadata": {"f:annotations": {}}}
	for _, k := range keys {
		fields["f:metadata"]["f:annotations"]["f:"+k] = struct{}{}
	}
	b, _ := json.Marshal(fields) // cannot fail: strings and empty structs
	return string(b)
}

// trimSlice keeps of an EndpointSlice its metadata but annotations and owner references (the
// handlers and the sync index read the service-name label), address type and ports, and of
// each endpoint what endpoints.Desired reads: addresses, conditions, node name and the pod
// reference's kind, namespace and name. Dropped: hostname, zone (the node's placement gives
// the zone), hints, deprecated topology, and the reference's UID, API and resource versions and
// field path.
func trimSlice(s *discoveryv1.EndpointSlice) {
	s.Annotations, s.OwnerReferences = nil, nil
	for i := range s.Endpoints {
		ep := &s.Endpoints[i]
		ep.Hostname, ep.Zone, ep.Hints, ep.DeprecatedTopology = nil, nil, nil, nil
		if r := ep.TargetRef; r != nil {
			*r = corev1.ObjectReference{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
		}
	}
}

func trimPod(p *corev1.Pod) {
	p.Annotations = nil
	containers := make([]corev1.Container, len(p.Spec.Containers))
	for i, c := range p.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Ports: c.Ports}
	}
	p.Spec = corev1.PodSpec{
		NodeName:       p.Spec.NodeName,
		ReadinessGates: p.Spec.ReadinessGates,
		Containers:     containers,
	}
	p.Status = corev1.PodStatus{
		Phase:      p.Status.Phase,
		Conditions: p.Status.Conditions,
		PodIP:      p.Status.PodIP,
		PodIPs:     p.Status.PodIPs,
	}
}
