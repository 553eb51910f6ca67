package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/pkg/negstatus"
	"github.com/neg-controller/neg-controller/pkg/wanted"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// HybridConfig configures hybrid connectivity (NON_GCP_PRIVATE_IP_PORT) NEGs: which Services get
// them, how their nodes are placed in GCE zones, and the takeover of Services from
// GoogleCloudPlatform's k8s-hybrid-neg-controller. The zero value: only
// solutions.cloud.google.com/hybrid-neg asks for hybrid NEGs, nodes are placed by the zone label
// when it already names a GCE zone, and that controller's Services are left to it.
type HybridConfig struct {
	// NonGCPMode makes cloud.google.com/neg ask for hybrid NEGs (--neg-type=non-gcp, GKE's
	// non-GCP mode); solutions.cloud.google.com/hybrid-neg asks for them in either mode
	// (annotation.SourceOf).
	NonGCPMode bool
	// Zones places the nodes of hybrid Services in GCE zones (--zone-mapping,
	// --default-neg-zone, --region); its NEGZones (--neg-zones) always get a NEG.
	Zones zones.Mapping
	// AdoptHybridControllerNEGs (--adopt-hybrid-neg-controller-negs) takes over the Services of
	// k8s-hybrid-neg-controller: a NEG it created for a Service (its markers,
	// naming.HybridControllerService) whose name the Service's hybrid-neg-status lists is used
	// as the Service's own — same name, endpoints kept — names it generated are kept, and its
	// finalizer is removed. Without it such Services are left alone with a Warning.
	AdoptHybridControllerNEGs bool
}

// HybridControllerFinalizer is k8s-hybrid-neg-controller's finalizer, on every Service whose
// hybrid-neg-status lists NEGs; it deletes the NEGs before removing it.
const HybridControllerFinalizer = "solutions.cloud.google.com/hybrid-neg"

// Event reasons of the takeover from k8s-hybrid-neg-controller.
const (
	// ReasonHybridNEGControllerService (Warning): the Service is managed by
	// k8s-hybrid-neg-controller and adopting is off; it is left alone.
	ReasonHybridNEGControllerService = "HybridNEGControllerService"
	// ReasonAdopt (Normal): a NEG of k8s-hybrid-neg-controller is now the Service's.
	ReasonAdopt = "Adopt"
	// ReasonFinalizerRemoved (Normal): k8s-hybrid-neg-controller's finalizer was removed.
	ReasonFinalizerRemoved = "HybridNEGFinalizerRemoved"
)

const slotHybridController = "hybridController"

// hybridStatus is the source whose status k8s-hybrid-neg-controller writes.
var hybridStatus = annotation.Source{ConfigKey: annotation.HybridNEGKey, StatusKey: annotation.HybridNEGStatusKey, Hybrid: true}

// placeNodes fills the NEG zones and node map of s from the nodes: for hybrid NEGs by the zone
// mapping (no instance; its NEGZones added), else by providerID and zone labels.
func (c *Controller) placeNodes(s *serviceSync, list []*corev1.Node) {
	ns := make([]zones.Node, 0, len(list))
	for _, n := range list {
		if s.hybrid {
			ns = append(ns, c.cfg.Hybrid.Zones.FromNode(n))
		} else {
			ns = append(ns, zones.FromNode(n))
		}
	}
	if s.hybrid {
		s.negZones = c.cfg.Hybrid.Zones.NEGZonesFor(ns)
	} else {
		s.negZones = zones.CandidateZones(ns)
	}
	s.nodes = zones.ByName(ns)
}

// hybridPlacement says whether the sync of s places nodes for hybrid NEGs: the Service's source
// says so; a Service without annotation (or gone) has the type of the NEGs it still owns, so
// that a hybrid NEG kept for a backend service keeps following the right endpoints.
func (c *Controller) hybridPlacement(s *serviceSync) bool {
	if s.src.ConfigKey != "" {
		return s.src.Hybrid
	}
	for _, e := range c.index.OwnedBy(s.key) {
		if negindex.TypeOf(e.NEG) == gce.TypeNonGCPPrivateIPPort {
			return true
		}
	}
	return false
}

// unmappedHint explains endpoints skipped on nodes without GCE zone for hybrid NEGs.
func (c *Controller) unmappedHint(s *serviceSync, msg string) string {
	if !s.hybrid {
		return msg
	}
	return msg + ". Nodes of hybrid NEGs get their GCE zone from their topology.kubernetes.io/zone label " +
		"through --zone-mapping (a label that is a zone of --region maps to itself), else --default-neg-zone; " +
		"endpoints on nodes with neither are skipped (NodeWithoutZone)"
}

// leftToHybridController reports whether the Service of s is k8s-hybrid-neg-controller's and
// adopting is off: it carries that controller's finalizer, or its hybrid-neg-status lists a NEG
// that controller created for it. Such a Service is left alone, with a Warning saying how to
// migrate; nothing is created, changed or deleted for it.
func (c *Controller) leftToHybridController(ctx context.Context, s *serviceSync) bool {
	if c.cfg.Hybrid.AdoptHybridControllerNEGs || !hasHybridAnnotations(s.svc) {
		c.warnings.Clear(s.key, slotHybridController)
		return false
	}
	ref, found := c.hybridControllerNEG(s)
	if !found && !slices.Contains(s.svc.Finalizers, HybridControllerFinalizer) {
		c.warnings.Clear(s.key, slotHybridController)
		return false
	}
	what := fmt.Sprintf("carries its finalizer %s", HybridControllerFinalizer)
	if found {
		what = fmt.Sprintf("has NEG %q in zone %q that it created", ref.Name, ref.Zone)
	}
	klog.FromContext(ctx).Info("Service managed by k8s-hybrid-neg-controller; leaving it alone", "reason", what)
	c.warn(s.key, s.target, slotHybridController, ReasonHybridNEGControllerService, fmt.Sprintf(
		"This Service is managed by k8s-hybrid-neg-controller (it %s), so neg-controller leaves it and its NEGs "+
			"alone. To migrate: stop k8s-hybrid-neg-controller, then run neg-controller with "+
			"--adopt-hybrid-neg-controller-negs: it takes over the NEGs listed in %s (same names, endpoints kept) "+
			"and removes the finalizer %s.", what, annotation.HybridNEGStatusKey, HybridControllerFinalizer))
	return true
}

// hasHybridAnnotations reports whether svc has solutions.cloud.google.com/hybrid-neg or its
// status annotation.
func hasHybridAnnotations(svc *corev1.Service) bool {
	_, config := svc.Annotations[annotation.HybridNEGKey]
	_, status := svc.Annotations[annotation.HybridNEGStatusKey]
	return config || status
}

// hybridControllerNEG finds a NEG the Service's hybrid-neg-status lists that
// k8s-hybrid-neg-controller created for the Service.
func (c *Controller) hybridControllerNEG(s *serviceSync) (neg.Ref, bool) {
	st, ok, err := annotation.StatusOf(s.svc, hybridStatus)
	if !ok || err != nil {
		return neg.Ref{}, false
	}
	for _, name := range st.NetworkEndpointGroups {
		for _, e := range c.index.Named(name) {
			if e.Verdict == negindex.HybridController && e.Service() == s.key {
				return neg.Ref{Zone: e.NEG.Zone, Name: e.NEG.Name}, true
			}
		}
	}
	return neg.Ref{}, false
}

// listsHybridStatus reports whether the hybrid-neg-status of svc lists the NEG name: the proof
// that the Service claims a NEG of k8s-hybrid-neg-controller.
func listsHybridStatus(svc *corev1.Service, name string) bool {
	st, ok, err := annotation.StatusOf(svc, hybridStatus)
	if !ok || err != nil {
		return false
	}
	for _, n := range st.NetworkEndpointGroups {
		if n == name {
			return true
		}
	}
	return false
}

// adopt uses e, a NEG of k8s-hybrid-neg-controller the Service of s claims (see claimed), as the
// Service's own; the first time it records a Normal event.
func (c *Controller) adopt(ctx context.Context, s *serviceSync, t *negTask, e *negindex.Entry) {
	if e.Claimed {
		return
	}
	c.index.MarkClaimed(t.ref)
	klog.FromContext(ctx).Info("Adopted NEG of k8s-hybrid-neg-controller", "neg", t.ref.Name, "zone", t.ref.Zone)
	c.normal(s.target, ReasonAdopt, fmt.Sprintf("Adopted NEG %q in zone %q from k8s-hybrid-neg-controller for port %d.",
		t.ref.Name, t.ref.Zone, t.port.Port))
}

// entryPort returns the Service port of an owned NEG: its description's, or for a NEG of
// k8s-hybrid-neg-controller (no port in its markers) the wanted port of that name, else the
// port the Service's hybrid-neg-status lists it for. ok is false when none is known.
func entryPort(svc *corev1.Service, want map[int32]wanted.Port, ref neg.Ref, e negindex.Entry) (int32, bool) {
	if e.Verdict != negindex.HybridController {
		return e.Port()
	}
	for port, p := range want {
		if p.Name == ref.Name {
			return port, true
		}
	}
	st, ok, err := annotation.StatusOf(svc, hybridStatus)
	if !ok || err != nil {
		return 0, false
	}
	for key, name := range st.NetworkEndpointGroups {
		if p, err := strconv.ParseInt(key, 10, 32); err == nil && name == ref.Name {
			return int32(p), true
		}
	}
	return 0, false
}

// serves reports whether e, the index entry of the NEG of t, serves the Service port of t (in
// neg-status, backend services, svcneg): ours, of the Service's NEG type, and made for that
// port — by this controller (its description), or by k8s-hybrid-neg-controller for the Service
// and adopted by this sync.
func (c *Controller) serves(s *serviceSync, t *negTask, e *negindex.Entry) bool {
	if e == nil || !e.Ours || negindex.TypeOf(e.NEG) != s.negType() {
		return false
	}
	if e.Verdict == negindex.HybridController {
		return e.Claimed && e.Service() == s.key && t.port.Name == t.ref.Name
	}
	return e.Description == c.description(s.key, t.port.Port)
}

// releaseHybridControllerFinalizer removes k8s-hybrid-neg-controller's finalizer from a Service
// taken over (AdoptHybridControllerNEGs): that controller no longer runs to remove it, and the
// Service's NEGs are now deleted by this one. The patch is conditioned on the resourceVersion
// the sync saw, so a concurrent change of the finalizers is never overwritten (a conflict is
// retried).
func (c *Controller) releaseHybridControllerFinalizer(ctx context.Context, s *serviceSync) error {
	if !c.cfg.Hybrid.AdoptHybridControllerNEGs || s.svc == nil || !slices.Contains(s.svc.Finalizers, HybridControllerFinalizer) {
		return nil
	}
	rest := slices.DeleteFunc(slices.Clone(s.svc.Finalizers), func(f string) bool { return f == HybridControllerFinalizer })
	var finalizers any = rest
	if len(rest) == 0 {
		finalizers = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": s.svc.ResourceVersion, "finalizers": finalizers}})
	if err != nil {
		return err
	}
	_, err = c.cfg.KubeClient.CoreV1().Services(s.key.Namespace).Patch(ctx, s.key.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: negstatus.FieldManager})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("removing finalizer %s: %w", HybridControllerFinalizer, err)
	}
	klog.FromContext(ctx).Info("Removed k8s-hybrid-neg-controller's finalizer", "finalizer", HybridControllerFinalizer)
	c.normal(s.target, ReasonFinalizerRemoved, fmt.Sprintf(
		"Removed finalizer %s of k8s-hybrid-neg-controller: neg-controller manages this Service's NEGs now.", HybridControllerFinalizer))
	return nil
}
