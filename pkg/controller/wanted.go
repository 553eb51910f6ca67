package controller

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

// portNEG is one NEG a Service wants: for a Service port, in every NEG zone.
type portNEG struct {
	port int32
	// portName is the Service port's name; EndpointSlice ports are matched by it.
	portName string
	// name is the NEG name: the custom name, or the generated one.
	name   string
	custom bool
}

// wantedNEGs computes the NEGs svc wants from its annotation and the Ingresses that reference
// it, keyed by Service port. A nil svc or a Service without the annotation wants nothing. A
// user error (malformed annotation, custom name claimed by an older Service) is returned as
// an *annotation.Error; the Service must then be left as it is.
func (c *Controller) wantedNEGs(svc *corev1.Service) (map[int32]portNEG, error) {
	cfg, ok, err := annotation.FromService(svc)
	if !ok {
		return nil, nil
	}
	if err != nil {
		var aerr *annotation.Error
		if errors.As(err, &aerr) {
			return nil, aerr
		}
		return nil, &annotation.Error{Reason: ReasonInvalidAnnotation, Message: err.Error()}
	}
	out := map[int32]portNEG{}
	for port, pc := range cfg.ExposedPorts {
		p := portNEG{port: port, portName: servicePortName(svc, port), name: pc.Name, custom: pc.Name != ""}
		if !p.custom {
			p.name = c.namer.NEGName(svc.Namespace, svc.Name, port)
		}
		out[port] = p
	}
	if cfg.Ingress {
		ings, err := c.ingresses.Ingresses(svc.Namespace).List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("listing Ingresses: %w", err)
		}
		for _, port := range ingressPorts(svc, ings) {
			if _, ok := out[port]; !ok {
				out[port] = portNEG{port: port, portName: servicePortName(svc, port),
					name: c.namer.NEGName(svc.Namespace, svc.Name, port)}
			}
		}
	}
	if err := c.checkNameClaims(svc, out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkNameClaims rejects svc if another Service wins one of its custom names.
func (c *Controller) checkNameClaims(svc *corev1.Service, want map[int32]portNEG) error {
	for _, port := range sortedPorts(want) {
		p := want[port]
		if !p.custom {
			continue
		}
		objs, err := c.svcIndexer.ByIndex(customNameIndex, p.name)
		if err != nil {
			return fmt.Errorf("looking up claims of NEG name %q: %w", p.name, err)
		}
		claimants := make([]*corev1.Service, 0, len(objs))
		for _, o := range objs {
			if s, ok := o.(*corev1.Service); ok {
				claimants = append(claimants, s)
			}
		}
		if w := nameWinner(svc, claimants); w != nil {
			return &annotation.Error{Reason: ReasonNEGNameConflict, Message: fmt.Sprintf(
				"custom NEG name %q (port %d) is already claimed by Service %s/%s, which was created earlier; "+
					"choose another name: nothing is done for this Service until the conflict is resolved",
				p.name, port, w.Namespace, w.Name)}
		}
	}
	return nil
}

// nameWinner returns the Service that wins a custom NEG name over svc among claimants (the
// Services whose annotation claims the name; svc may be among them), or nil if svc wins. The
// winner is the oldest by creationTimestamp, then the first by namespace/name.
func nameWinner(svc *corev1.Service, claimants []*corev1.Service) *corev1.Service {
	best := svc
	for _, s := range claimants {
		if s.Namespace == svc.Namespace && s.Name == svc.Name {
			continue
		}
		if claimsBefore(s, best) {
			best = s
		}
	}
	if best == svc {
		return nil
	}
	return best
}

// claimsBefore reports whether a's claim ranks before b's: older first, then by
// namespace/name.
func claimsBefore(a, b *corev1.Service) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	ka, kb := cache.MetaObjectToName(a).String(), cache.MetaObjectToName(b).String()
	return ka < kb
}

// servicePortName returns the name of the Service port with number port.
func servicePortName(svc *corev1.Service, port int32) string {
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			return sp.Name
		}
	}
	return ""
}

// sortedPorts returns the keys of want, ascending.
func sortedPorts(want map[int32]portNEG) []int32 {
	out := make([]int32, 0, len(want))
	for p := range want {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// description returns the ownership description of the NEG of a Service port.
func (c *Controller) description(key cache.ObjectName, port int32) naming.Description {
	return naming.NewDescription(c.cfg.ClusterUID, key.Namespace, key.Name, port)
}

// descPort parses the port of a description; ok is false if it is not a port number.
func descPort(d naming.Description) (int32, bool) {
	p, err := strconv.ParseInt(strings.TrimSpace(d.Port), 10, 32)
	return int32(p), err == nil
}
