package controller

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/negindex"
)

// portNEG is one NEG a Service wants: for a Service port, in every NEG zone.
type portNEG struct {
	port int32
	// portName is the Service port's name; EndpointSlice ports are matched by it.
	portName string
	// name is the NEG name: the custom name, the inherited one, or the generated one.
	name   string
	custom bool
	// inherited: name is the one k8s-hybrid-neg-controller generated for the port, kept from
	// the Service's hybrid-neg-status when taking the Service over (see inheritedName).
	inherited bool
}

// generated reports whether the NEG name is the one this controller generates.
func (p portNEG) generated() bool { return !p.custom && !p.inherited }

// wantedNEGs computes the NEGs svc wants from its annotation (annotation.SourceOf: which one,
// and the NEG type) and the Ingresses that reference it, keyed by Service port, and returns the
// source too (zero when svc has no NEG annotation). A nil svc or a Service without an
// annotation wants nothing. A user error (malformed annotation, both annotations, custom name
// claimed by an older Service) is returned as an *annotation.Error; the Service must then be
// left as it is.
func (c *Controller) wantedNEGs(svc *corev1.Service) (map[int32]portNEG, annotation.Source, error) {
	src, ok, err := annotation.SourceOf(svc, c.cfg.Hybrid.NonGCPMode)
	if !ok {
		return nil, src, nil
	}
	if err != nil {
		return nil, src, err
	}
	cfg, _, err := annotation.FromSource(svc, src)
	if err != nil {
		var aerr *annotation.Error
		if errors.As(err, &aerr) {
			return nil, src, aerr
		}
		return nil, src, &annotation.Error{Reason: ReasonInvalidAnnotation, Message: err.Error()}
	}
	if err := checkServiceShape(svc, src, c.cfg.IPv6OnlyNEG); err != nil {
		return nil, src, err
	}
	out := map[int32]portNEG{}
	for port, pc := range cfg.ExposedPorts {
		p := portNEG{port: port, portName: servicePortName(svc, port), name: pc.Name, custom: pc.Name != ""}
		if !p.custom {
			p.name, p.inherited = c.generatedName(svc, src, port)
		}
		out[port] = p
	}
	if cfg.Ingress {
		ings, err := c.ingresses.Ingresses(svc.Namespace).List(labels.Everything())
		if err != nil {
			return nil, src, fmt.Errorf("listing Ingresses: %w", err)
		}
		for _, port := range ingressPorts(svc, ings) {
			if _, ok := out[port]; !ok {
				p := portNEG{port: port, portName: servicePortName(svc, port)}
				p.name, p.inherited = c.generatedName(svc, src, port)
				out[port] = p
			}
		}
	}
	if err := c.checkNameClaims(svc, out); err != nil {
		return nil, src, err
	}
	return out, src, nil
}

// generatedName is the NEG name of a Service port without custom name: the one
// k8s-hybrid-neg-controller gave it when the Service is taken over from it (inherited), else
// ours.
func (c *Controller) generatedName(svc *corev1.Service, src annotation.Source, port int32) (name string, inherited bool) {
	if name, ok := c.inheritedName(svc, src, port); ok {
		return name, true
	}
	return c.namer.NEGName(svc.Namespace, svc.Name, port), false
}

// checkNameClaims rejects svc if it may not use one of its custom names:
//
//   - with RequireNamespacePrefix, a name must start with "<namespace>-";
//   - a NEG of that name that exists and whose description names another Service belongs to
//     that Service for as long as it exists: every other claim is refused, however old, so no
//     annotation in any namespace can take over (and freeze) a NEG in use;
//   - only when no NEG of the name exists does the oldest claimant win (then namespace/name).
//
// A refusal is a NEGNameConflict (or InvalidCustomNEGName) on the claimant, never on the owner:
// the owner's check passes by the second rule whatever others claim.
func (c *Controller) checkNameClaims(svc *corev1.Service, want map[int32]portNEG) error {
	for _, port := range slices.Sorted(maps.Keys(want)) {
		p := want[port]
		if !p.custom {
			continue
		}
		if c.cfg.RequireNamespacePrefix && !strings.HasPrefix(p.name, svc.Namespace+"-") {
			return &annotation.Error{Reason: annotation.ReasonInvalidCustomName, Message: fmt.Sprintf(
				"custom NEG name %q (port %d) must start with %q: this cluster requires custom NEG names to "+
					"start with the Service's namespace", p.name, port, svc.Namespace+"-")}
		}
		if owner, ok := c.existingOwner(p.name); ok {
			if owner.Namespace == svc.Namespace && owner.Name == svc.Name {
				continue
			}
			return &annotation.Error{Reason: ReasonNEGNameConflict, Message: fmt.Sprintf(
				"custom NEG name %q (port %d) is the name of an existing NEG that belongs to Service %s/%s; "+
					"choose another name: nothing is done for this Service until the conflict is resolved",
				p.name, port, owner.Namespace, owner.Name)}
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

// existingOwner returns the Service an existing NEG called name belongs to: the Service its
// description names, when the description names this cluster (ours, or ours but for type or
// network: such a NEG is still not free to claim). ok is false when no such NEG exists — no
// NEG of the name, or only NEGs of other clusters or users, which ensureNEG refuses per zone.
func (c *Controller) existingOwner(name string) (cache.ObjectName, bool) {
	for _, e := range c.index.Named(name) {
		if e.Verdict != negindex.NotOurs && e.Description.Namespace != "" && e.Description.ServiceName != "" {
			return e.Service(), true
		}
	}
	return cache.ObjectName{}, false
}

// checkServiceShape refuses Services that cannot have endpoints in a GCE_VM_IP_PORT or
// NON_GCP_PRIVATE_IP_PORT NEG: an ExternalName Service has no endpoints at all, an IPv6-only
// Service only IPv6 ones (unless ipv6Only: IPv6-only GCE_VM_IP_PORT NEGs are enabled). Like an
// annotation error, the refusal leaves any NEG of the Service as it is.
func checkServiceShape(svc *corev1.Service, src annotation.Source, ipv6Only bool) *annotation.Error {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return &annotation.Error{Reason: ReasonExternalNameService, Message: fmt.Sprintf(
			"Service is of type ExternalName (%q): it has no endpoints, so %s creates no NEG for it",
			svc.Spec.ExternalName, src.ConfigKey)}
	}
	if len(svc.Spec.IPFamilies) > 0 && !slices.Contains(svc.Spec.IPFamilies, corev1.IPv4Protocol) && (!ipv6Only || src.Hybrid) {
		hint := ""
		if !src.Hybrid {
			hint = ", or run neg-controller with --enable-ipv6-only-neg (the NEGs' subnetwork must have IPv6)"
		}
		return &annotation.Error{Reason: ReasonNoIPv4Endpoints, Message: fmt.Sprintf(
			"Service is IPv6-only (ipFamilies %v): %s NEGs hold IPv4 endpoints, so %s creates no NEG "+
				"for it; make the Service dual-stack or IPv4%s", svc.Spec.IPFamilies, negTypeOf(src), src.ConfigKey, hint)}
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

// servicePortExists reports whether svc has a port with number port.
func servicePortExists(svc *corev1.Service, port int32) bool {
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			return true
		}
	}
	return false
}

// description returns the ownership description of the NEG of a Service port.
func (c *Controller) description(key cache.ObjectName, port int32) naming.Description {
	return naming.NewDescription(c.cfg.ClusterUID, key.Namespace, key.Name, port)
}
