package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/wanted"
)

// EventSource is the component name of every event the controller records.
const EventSource = "neg-controller"

// Event reasons recorded on Services. Normal events report what changed in GCE, aggregated per
// sync and NEG; Warning events report why something could not be done.
const (
	// ReasonCreate: a NEG was created (Normal).
	ReasonCreate = "Create"
	// ReasonAttach: endpoints were attached to a NEG (Normal).
	ReasonAttach = "Attach"
	// ReasonDetach: endpoints were detached from a NEG (Normal).
	ReasonDetach = "Detach"
	// ReasonDelete: a NEG was deleted (Normal).
	ReasonDelete = "Delete"

	// ReasonInvalidAnnotation is used when the annotation error carries no reason of its own.
	ReasonInvalidAnnotation = wanted.ReasonInvalidAnnotation
	// ReasonNEGNameConflict: another Service claims the same custom NEG name and wins.
	ReasonNEGNameConflict = wanted.ReasonNEGNameConflict
	// ReasonNEGControllerConflict: another field manager writes the Service's neg-status; the
	// controller leaves the Service alone.
	ReasonNEGControllerConflict = "NEGControllerConflict"
	// ReasonNEGNotOwned: a NEG of the wanted name exists but was not created for this Service.
	ReasonNEGNotOwned = "NEGNotOwned"
	// ReasonNEGInUse: a NEG to delete is still referenced by a backend service; it is kept.
	ReasonNEGInUse = "NEGInUse"
	// ReasonCreateNEGFailed: creating a NEG failed.
	ReasonCreateNEGFailed = "CreateNEGFailed"
	// ReasonDeleteNEGFailed: deleting a NEG failed (other than in use).
	ReasonDeleteNEGFailed = "DeleteNEGFailed"
	// ReasonListNetworkEndpointsFailed: reading a NEG's endpoints failed.
	ReasonListNetworkEndpointsFailed = "ListNetworkEndpointsFailed"
	// ReasonAttachFailed: an attach call failed.
	ReasonAttachFailed = "AttachFailed"
	// ReasonDetachFailed: a detach call failed.
	ReasonDetachFailed = "DetachFailed"
	// ReasonInvalidEndpoint: GCE rejected endpoints as invalid; they are skipped.
	ReasonInvalidEndpoint = "InvalidEndpoint"
	// ReasonEndpointsSkipped: endpoints of the Service could not be mapped to a NEG.
	ReasonEndpointsSkipped = "EndpointsSkipped"
	// ReasonEndpointsOverCapacity: a NEG would exceed its endpoint limit; the excess is left out.
	ReasonEndpointsOverCapacity = "EndpointsOverCapacity"
	// ReasonExternalNameService: an ExternalName Service carries the NEG annotation; it has no
	// endpoints and gets no NEG.
	ReasonExternalNameService = wanted.ReasonExternalNameService
	// ReasonNoIPv4Endpoints: the Service cannot have IPv4 endpoints (IPv6-only, or only FQDN or
	// IPv6 EndpointSlices), so its NEGs stay empty.
	ReasonNoIPv4Endpoints = wanted.ReasonNoIPv4Endpoints
	// ReasonStatusUpdateFailed: the neg-status annotation could not be written.
	ReasonStatusUpdateFailed = "NEGStatusUpdateFailed"
)

// eventTarget returns the object events about key are recorded on: the Service if known, else
// a reference built from the key (the Service was deleted).
func eventTarget(key cache.ObjectName, svc *corev1.Service) *corev1.Service {
	if svc != nil {
		return svc
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
	}
}

// warn records a Warning event on target unless the same (slot, message) was the last one
// recorded for key.
func (c *Controller) warn(key cache.ObjectName, target *corev1.Service, slot, reason, msg string) {
	if !c.warnings.Changed(key, slot, msg) {
		return
	}
	c.recorder.Event(target, corev1.EventTypeWarning, reason, msg)
}

// normal records a Normal event on target.
func (c *Controller) normal(target *corev1.Service, reason, msg string) {
	c.recorder.Event(target, corev1.EventTypeNormal, reason, msg)
}
