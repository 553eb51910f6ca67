package negbinding

import (
	"slices"
	"strings"

	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// Bound is one zonal NEG a binding holds for a Service port.
type Bound struct {
	Service string
	Port    int32
	NEG     neg.Ref
}

// Bound returns the zonal NEGs the bindings of namespace hold — those their status records,
// of bindings not being deleted — for the readiness gates of the Services' pods (the reflector
// reads their health as for annotation-driven NEGs). Nil before the CRD is installed.
func (c *Controller) Bound(namespace string) []Bound {
	inf := c.informer()
	if inf == nil {
		return nil
	}
	objs, err := inf.GetIndexer().ByIndex(cache.NamespaceIndex, namespace)
	if err != nil {
		return nil
	}
	var out []Bound
	for _, o := range objs {
		b, ok := o.(*NetworkEndpointGroupBinding)
		if !ok || b.DeletionTimestamp != nil || b.Spec.BackendRef == nil {
			continue
		}
		for _, r := range statusRefs(b) {
			out = append(out, Bound{Service: b.Spec.BackendRef.Name, Port: b.Spec.BackendRef.Port, NEG: r})
		}
	}
	slices.SortFunc(out, func(a, b Bound) int {
		if c := strings.Compare(a.Service, b.Service); c != 0 {
			return c
		}
		return compareRefs(a.NEG, b.NEG)
	})
	return out
}
