// Package wanted decides which NEGs a Service asks for: per Service port, the NEG name — the
// custom one of its annotation, the one k8s-hybrid-neg-controller gave it (kept when the
// Service is taken over), or the one this controller generates — from its NEG annotation
// (cloud.google.com/neg or solutions.cloud.google.com/hybrid-neg) and the GCE-class Ingresses
// that reference it; and whether it may have them: a custom name belongs to the Service an
// existing NEG of that name was made for, else to its oldest claimant (claims.go), and a
// Service that cannot have endpoints of the NEG type is refused.
//
// A refusal is an *annotation.Error with the Warning event's reason: the Service must then be
// left as it is. The package reads the Service, the Ingress lister, the Service indexer of
// claims (CustomNameIndex) and the NEG index; it calls no API and writes nothing.
package wanted

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/negindex"
)

// Warning event reasons of a refused Service (recorded on it by the controller).
const (
	// ReasonInvalidAnnotation: the NEG annotation is malformed.
	ReasonInvalidAnnotation = "InvalidNEGAnnotation"
	// ReasonNEGNameConflict: a custom NEG name belongs to another Service.
	ReasonNEGNameConflict = "NEGNameConflict"
	// ReasonExternalNameService: an ExternalName Service carries the NEG annotation; it has no
	// endpoints and gets no NEG.
	ReasonExternalNameService = "ExternalNameService"
	// ReasonNoIPv4Endpoints: the Service cannot have IPv4 endpoints (IPv6-only, or only FQDN or
	// IPv6 EndpointSlices), so its NEGs stay empty.
	ReasonNoIPv4Endpoints = "NoIPv4Endpoints"
)

// Port is one NEG a Service wants: for a Service port, in every NEG zone.
type Port struct {
	Port int32
	// PortName is the Service port's name; EndpointSlice ports are matched by it.
	PortName string
	// Name is the NEG name: the custom name, the inherited one, or the generated one.
	Name   string
	Custom bool
	// Inherited: Name is the one k8s-hybrid-neg-controller generated for the port, kept from
	// the Service's hybrid-neg-status when taking the Service over (see Resolver.inheritedName).
	Inherited bool
}

// Generated reports whether the NEG name is the one this controller generates.
func (p Port) Generated() bool { return !p.Custom && !p.Inherited }

// Resolver computes the NEGs of Services. Its fields are set once; it is safe for concurrent
// use when its listers are.
type Resolver struct {
	// Namer generates the NEG names of this cluster.
	Namer naming.Namer
	// NonGCPMode: cloud.google.com/neg asks for hybrid NEGs (annotation.SourceOf).
	NonGCPMode bool
	// AdoptHybridControllerNEGs: Services of solutions.cloud.google.com/hybrid-neg keep the NEG
	// names k8s-hybrid-neg-controller gave them.
	AdoptHybridControllerNEGs bool
	// IPv6Only: IPv6-only Services get IPv6-only GCE_VM_IP_PORT NEGs instead of a refusal.
	IPv6Only bool
	// RequireNamespacePrefix: custom NEG names must start with "<namespace>-".
	RequireNamespacePrefix bool
	// Ingresses lists the Ingresses that may reference a Service.
	Ingresses networkinglisters.IngressLister
	// Claims is the Service indexer with CustomNameIndex.
	Claims cache.Indexer
	// Index is the NEGs that exist in GCE.
	Index *negindex.Index
}

// NEGs computes the NEGs svc wants from its annotation (annotation.SourceOf: which one, and the
// NEG type) and the Ingresses that reference it, keyed by Service port, and returns the source
// too (zero when svc has no NEG annotation). A nil svc or a Service without an annotation wants
// nothing. A user error (malformed annotation, both annotations, custom name claimed by an
// older Service) is returned as an *annotation.Error; the Service must then be left as it is.
func (r *Resolver) NEGs(svc *corev1.Service) (map[int32]Port, annotation.Source, error) {
	src, ok, err := annotation.SourceOf(svc, r.NonGCPMode)
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
	if err := CheckServiceShape(svc, src, r.IPv6Only); err != nil {
		return nil, src, err
	}
	out := map[int32]Port{}
	for port, pc := range cfg.ExposedPorts {
		p := Port{Port: port, PortName: ServicePortName(svc, port), Name: pc.Name, Custom: pc.Name != ""}
		if !p.Custom {
			p.Name, p.Inherited = r.generatedName(svc, src, port)
		}
		out[port] = p
	}
	if cfg.Ingress {
		ings, err := r.Ingresses.Ingresses(svc.Namespace).List(labels.Everything())
		if err != nil {
			return nil, src, fmt.Errorf("listing Ingresses: %w", err)
		}
		for _, port := range IngressPorts(svc, ings) {
			if _, ok := out[port]; !ok {
				p := Port{Port: port, PortName: ServicePortName(svc, port)}
				p.Name, p.Inherited = r.generatedName(svc, src, port)
				out[port] = p
			}
		}
	}
	if err := r.checkNameClaims(svc, out); err != nil {
		return nil, src, err
	}
	return out, src, nil
}

// generatedName is the NEG name of a Service port without custom name: the one
// k8s-hybrid-neg-controller gave it when the Service is taken over from it (inherited), else
// ours.
func (r *Resolver) generatedName(svc *corev1.Service, src annotation.Source, port int32) (name string, inherited bool) {
	if name, ok := r.inheritedName(svc, src, port); ok {
		return name, true
	}
	return r.Namer.NEGName(svc.Namespace, svc.Name, port), false
}

// inheritedName returns the name k8s-hybrid-neg-controller gave a Service port without custom
// name, when the Service is taken over from it (AdoptHybridControllerNEGs, annotation
// solutions.cloud.google.com/hybrid-neg): the name its hybrid-neg-status lists for the port, if
// it is exactly what that controller generates for the port (naming.IsHybridControllerName).
// Users and their load balancers depend on these names, so they are kept.
func (r *Resolver) inheritedName(svc *corev1.Service, src annotation.Source, port int32) (string, bool) {
	if !r.AdoptHybridControllerNEGs || src.ConfigKey != annotation.HybridNEGKey {
		return "", false
	}
	st, ok, err := annotation.StatusOf(svc, src)
	if !ok || err != nil {
		return "", false
	}
	name := st.NetworkEndpointGroups[strconv.Itoa(int(port))]
	return name, naming.IsHybridControllerName(name, svc.Namespace, svc.Name, port)
}

// NEGType is the NEG type of a source.
func NEGType(src annotation.Source) string {
	if src.Hybrid {
		return gce.TypeNonGCPPrivateIPPort
	}
	return gce.TypeGCEVMIPPort
}

// CheckServiceShape refuses Services that cannot have endpoints in a GCE_VM_IP_PORT or
// NON_GCP_PRIVATE_IP_PORT NEG: an ExternalName Service has no endpoints at all, an IPv6-only
// Service only IPv6 ones (unless ipv6Only: IPv6-only GCE_VM_IP_PORT NEGs are enabled). Like an
// annotation error, the refusal leaves any NEG of the Service as it is.
func CheckServiceShape(svc *corev1.Service, src annotation.Source, ipv6Only bool) *annotation.Error {
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
				"for it; make the Service dual-stack or IPv4%s", svc.Spec.IPFamilies, NEGType(src), src.ConfigKey, hint)}
	}
	return nil
}

// ServicePortName returns the name of the Service port with number port.
func ServicePortName(svc *corev1.Service, port int32) string {
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			return sp.Name
		}
	}
	return ""
}

// ServicePortExists reports whether svc has a port with number port.
func ServicePortExists(svc *corev1.Service, port int32) bool {
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port {
			return true
		}
	}
	return false
}
