package annotation

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// Annotation keys of GoogleCloudPlatform/cloud-solutions k8s-hybrid-neg-controller, read and
// written in its formats so that its users switch without touching their manifests.
const (
	// HybridNEGKey requests hybrid (NON_GCP_PRIVATE_IP_PORT) NEGs; same JSON as NEGKey.
	HybridNEGKey = "solutions.cloud.google.com/hybrid-neg"
	// HybridNEGStatusKey reports the hybrid NEGs, in the format of NEGStatusKey (Status).
	HybridNEGStatusKey = "solutions.cloud.google.com/hybrid-neg-status"
)

// ReasonConflictingAnnotations: a Service carries both NEGKey and HybridNEGKey.
const ReasonConflictingAnnotations = "ConflictingNEGAnnotations"

// Source is where a Service's NEG configuration comes from: which annotation requests the NEGs,
// which one reports them, and whether they are hybrid (NON_GCP_PRIVATE_IP_PORT) NEGs.
type Source struct {
	// ConfigKey is the annotation the user writes (NEGKey or HybridNEGKey).
	ConfigKey string
	// StatusKey is the annotation the controller writes (NEGStatusKey or HybridNEGStatusKey),
	// always in the Status format.
	StatusKey string
	// Hybrid is true for NON_GCP_PRIVATE_IP_PORT NEGs (endpoints without instance), false for
	// GCE_VM_IP_PORT NEGs.
	Hybrid bool
}

// SourceOf says which annotation configures svc's NEGs:
//
//	annotations present          nonGCPMode   Source
//	HybridNEGKey                 any          HybridNEGKey / HybridNEGStatusKey, hybrid
//	NEGKey                       false        NEGKey / NEGStatusKey, GCE_VM_IP_PORT
//	NEGKey                       true         NEGKey / NEGStatusKey, hybrid (GKE's non-GCP mode)
//	both                         any          error ReasonConflictingAnnotations
//	neither                      any          ok false
//
// Only presence is looked at; FromSource parses and validates. Both annotations at once are
// refused rather than merged: both would generate the same NEG names for the same ports.
func SourceOf(svc *corev1.Service, nonGCPMode bool) (src Source, ok bool, err error) {
	if svc == nil {
		return Source{}, false, nil
	}
	_, gke := svc.Annotations[NEGKey]
	_, hybrid := svc.Annotations[HybridNEGKey]
	switch {
	case gke && hybrid:
		return Source{}, true, &Error{Reason: ReasonConflictingAnnotations, Message: fmt.Sprintf(
			"the Service has both %q and %q; keep one: %q for NEGs of the controller's --neg-type, %q for hybrid NEGs",
			NEGKey, HybridNEGKey, NEGKey, HybridNEGKey)}
	case hybrid:
		return Source{ConfigKey: HybridNEGKey, StatusKey: HybridNEGStatusKey, Hybrid: true}, true, nil
	case gke:
		return Source{ConfigKey: NEGKey, StatusKey: NEGStatusKey, Hybrid: nonGCPMode}, true, nil
	}
	return Source{}, false, nil
}

// FromSource is FromService for the annotation src names (NEGKey or HybridNEGKey): the same
// JSON, the same checks in the same order, messages naming src.ConfigKey.
//
// k8s-hybrid-neg-controller reads only exposed_ports (and parses, then ignores, "ingress"); this
// reads the whole format, so "ingress": true and "zones" take effect on hybrid NEGs too.
func FromSource(svc *corev1.Service, src Source) (cfg Config, ok bool, err error) {
	key := src.ConfigKey
	if key == "" {
		key = NEGKey
	}
	return fromService(svc, key)
}

// StatusOf returns the parsed status annotation src names; ok is false when svc has none.
func StatusOf(svc *corev1.Service, src Source) (st Status, ok bool, err error) {
	if svc == nil {
		return Status{}, false, nil
	}
	key := src.StatusKey
	if key == "" {
		key = NEGStatusKey
	}
	value, ok := svc.Annotations[key]
	if !ok {
		return Status{}, false, nil
	}
	st, err = ParseStatus(value)
	return st, true, err
}
