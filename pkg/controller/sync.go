package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/endpoints"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/pkg/negstatus"
	"github.com/neg-controller/neg-controller/pkg/wanted"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// Warning slots (see pkg/dedup) used per Service.
const (
	slotAnnotation = "annotation"
	slotSkipped    = "skipped"
	slotStatus     = "status"
	slotNoIPv4     = "noIPv4"
)

// serviceSync is the state of one sync of one Service.
type serviceSync struct {
	key    cache.ObjectName
	svc    *corev1.Service // nil when the Service is gone
	target *corev1.Service // what events are recorded on
	want   map[int32]wanted.Port
	// src is the Service's NEG annotation (zero when it has none or is gone); hybrid says
	// whether its NEGs are NON_GCP_PRIVATE_IP_PORT NEGs (see Controller.hybridPlacement).
	src    annotation.Source
	hybrid bool
	// stack is the address families of the NEGs' endpoints (endpoints.StackOf; IPv6-only
	// Services without IPv6-only NEGs are refused before, by wanted.CheckServiceShape); waiting holds,
	// per port and zone, the endpoints of dual-stack pods waiting for their other address
	// (endpoints.Result.Waiting), written by desiredEndpoints.
	stack   endpoints.Stack
	waiting map[int32]map[string]neg.EndpointSet
	// negZones are the zones with a candidate node (or, for hybrid NEGs, mapped ones and
	// --neg-zones) plus the pre-provisioned ones; nodes maps node name to node. preOnly are the
	// pre-provisioned zones without candidate node; zonesFinal says whether the "zones" field's
	// outcome is final (preprovision.go).
	negZones   []string
	nodes      map[string]zones.Node
	preOnly    []string
	zonesFinal bool

	mu        sync.Mutex
	requeueAt time.Time // earliest time the Service must be synced again; zero = none
}

// negType is the type of the Service's NEGs.
func (s *serviceSync) negType() string {
	if s.hybrid {
		return gce.TypeNonGCPPrivateIPPort
	}
	return gce.TypeGCEVMIPPort
}

// requeueBy asks for another sync no later than t.
func (s *serviceSync) requeueBy(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requeueAt.IsZero() || t.Before(s.requeueAt) {
		s.requeueAt = t
	}
}

// negTask is one NEG a sync works on.
type negTask struct {
	ref  neg.Ref
	port wanted.Port
	// remove is true for a NEG the Service no longer wants: detach everything, then delete.
	remove bool
	// active is true when the zone has candidate nodes; an inactive NEG is kept but emptied.
	active bool
	// ready is set by the first phase when the NEG exists, is ours and its endpoints are known.
	ready bool
}

// sync brings the NEGs of one Service to their desired state. It returns how soon the Service
// must be synced again (0 = only on events), and an error for failures that concern the
// whole Service. Failures of single NEGs are retried per NEG (see negState) and do not stop
// the other NEGs.
//
// Steps: parse the annotation (a user error records a Warning event and stops: nothing is
// touched in GCE), find the NEG zones from the nodes, ensure every wanted NEG exists and read
// its current endpoints (in parallel), write neg-status, then read the desired endpoints from
// the EndpointSlices and start the attach and detach calls (asynchronously). NEGs the Service
// no longer wants are emptied, then deleted.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) (time.Duration, error) {
	svc, err := c.services.Services(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		svc = nil
	} else if err != nil {
		return 0, err
	}
	s := &serviceSync{key: key, svc: svc, target: eventTarget(key, svc)}
	want, src, err := c.wants.NEGs(svc)
	var aerr *annotation.Error
	if errors.As(err, &aerr) {
		klog.FromContext(ctx).Info("Service NEG configuration rejected; leaving its NEGs as they are",
			"reason", aerr.Reason, "message", aerr.Message)
		c.warn(key, s.target, slotAnnotation, aerr.Reason, aerr.Message)
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	c.warnings.Clear(key, slotAnnotation)
	s.src = src
	if svc != nil && c.leftToHybridController(ctx, s) {
		return 0, nil
	}
	if svc != nil && len(want) > 0 && c.otherStatusWriter(ctx, s) {
		return 0, nil
	}
	s.want = want
	s.hybrid = c.hybridPlacement(s)
	if svc != nil {
		// Hybrid NEGs take IPv4 endpoints only (the Compute API documents no IPv6 for them).
		s.stack, _ = endpoints.StackOf(svc, c.cfg.DualStackNEG && !s.hybrid, c.cfg.IPv6OnlyNEG && !s.hybrid)
	}
	if len(want) == 0 && len(c.index.OwnedBy(key)) == 0 {
		c.warnings.Keep(key, nil)
		c.syncBackends(s, nil)
		return 0, errors.Join(c.writeStatus(ctx, s, nil), c.releaseHybridControllerFinalizer(ctx, s),
			c.syncSvcNEGs(ctx, s, nil, nil))
	}
	if err := c.loadNodes(s); err != nil {
		return 0, err
	}
	c.preprovision(ctx, s)
	tasks := c.tasks(s)
	c.parallel(tasks, func(t *negTask) { c.prepare(ctx, s, t) })
	statusErr := errors.Join(c.writeStatus(ctx, s, tasks), c.releaseHybridControllerFinalizer(ctx, s))
	c.syncBackends(s, tasks)

	desired, err := c.desiredEndpoints(s, tasks)
	if err != nil {
		return 0, err
	}
	c.reconcileAll(ctx, s, tasks, desired)
	svcNEGErr := c.syncSvcNEGs(ctx, s, tasks, desired)
	var after time.Duration
	if !s.requeueAt.IsZero() {
		after = max(s.requeueAt.Sub(c.clock.Now()), time.Millisecond)
	}
	return after, errors.Join(statusErr, svcNEGErr)
}

// reconcileAll hands every ready NEG of s its desired endpoints, in parallel (reconcile): those
// of its port and zone, an empty set when the wanted port has none there, nil when the port is
// no longer wanted.
func (c *Controller) reconcileAll(ctx context.Context, s *serviceSync, tasks []*negTask, desired map[int32]map[string]neg.EndpointSet) {
	c.parallel(tasks, func(t *negTask) {
		if !t.ready {
			return
		}
		var d neg.EndpointSet
		if byZone, ok := desired[t.port.Port]; ok {
			d = byZone[t.ref.Zone]
			if d == nil {
				d = neg.NewEndpointSet()
			}
		}
		c.reconcile(ctx, s, t, d)
	})
}

// otherStatusWriter reports whether another field manager writes the Service's neg-status (GKE's
// own NEG controller, say) or hybrid-neg-status: then the Service is left alone, with a Warning
// saying how to hand it back. When taking Services over from k8s-hybrid-neg-controller
// (AdoptHybridControllerNEGs), hybrid-neg-status is not checked: its other writer is that
// controller, which the user stopped (its field manager is derived from its user agent, so it
// is not a name to rely on).
func (c *Controller) otherStatusWriter(ctx context.Context, s *serviceSync) bool {
	if c.cfg.Hybrid.AdoptHybridControllerNEGs && s.src.StatusKey == annotation.HybridNEGStatusKey {
		return false
	}
	others := negstatus.Writers(s.svc, s.src.StatusKey)
	if len(others) == 0 {
		return false
	}
	klog.FromContext(ctx).Info("Another controller writes this Service's neg-status; not touching its NEGs", "fieldManagers", others)
	c.warn(s.key, s.target, slotAnnotation, ReasonNEGControllerConflict, fmt.Sprintf(
		"Another controller (field manager %s) writes annotation %s on this Service, so it manages the "+
			"Service's NEGs too (GKE's own NEG controller?). neg-controller stops changing this Service's NEGs "+
			"and status to avoid a fight. Disable one of the controllers for this Service, then remove the "+
			"annotation (kubectl annotate service %s %s-) to hand it back.",
		strings.Join(others, ", "), s.src.StatusKey, s.key.Name, s.src.StatusKey))
	return true
}

// loadNodes fills the NEG zones and node map of s from the node cache (placeNodes), placed once
// per change of the nodes and shared by the syncs (c.placements; onNode invalidates it).
func (c *Controller) loadNodes(s *serviceSync) error {
	p, err := c.placements.Get(s.hybrid, func() (zones.Placement, error) {
		list, err := c.nodes.List(labels.Everything())
		if err != nil {
			return zones.Placement{}, fmt.Errorf("listing nodes: %w", err)
		}
		placed := &serviceSync{hybrid: s.hybrid}
		c.placeNodes(placed, list)
		return zones.Placement{Zones: placed.negZones, Nodes: placed.nodes}, nil
	})
	if err != nil {
		return err
	}
	s.negZones, s.nodes = p.Zones, p.Nodes
	return nil
}

// claimed reports whether the Service svc (nil when gone) may act on a NEG of its own, e: always
// for a generated name; for a custom name only with proof that the Service claims or claimed
// the name — its annotation wants it, a sync of this process used it, the neg-status (or
// hybrid-neg-status) on the Service lists it, or a ServiceNetworkEndpointGroup of ours records it
// for the Service. A custom-named NEG without such proof (say, made by a cluster restored from
// the same backup, which shares our cluster-uid) is never touched. A NEG of
// k8s-hybrid-neg-controller (adopted) is claimed the same ways except by the annotation alone:
// its name must be in the Service's hybrid-neg-status (or used, or recorded, since).
func (c *Controller) claimed(svc *corev1.Service, want map[int32]wanted.Port, ref neg.Ref, e negindex.Entry) bool {
	switch {
	case e.Verdict == negindex.OwnedGenerated || (e.Claimed && e.Ours):
		return true
	case e.Verdict != negindex.OwnedCustom && e.Verdict != negindex.HybridController || !e.Ours:
		return false
	}
	if e.Verdict == negindex.OwnedCustom {
		for _, p := range want {
			if p.Name == ref.Name {
				return true
			}
		}
	}
	owner := e.Service()
	if c.cfg.SvcNEG != nil && slices.Contains(c.cfg.SvcNEG.NamesOf(owner), ref.Name) {
		return true
	}
	if svc == nil {
		return false
	}
	if listsHybridStatus(svc, ref.Name) {
		return true
	}
	if e.Verdict != negindex.OwnedCustom {
		return false
	}
	st, err := annotation.ParseStatus(svc.Annotations[annotation.NEGStatusKey])
	return err == nil && slices.Contains(slices.Collect(maps.Values(st.NetworkEndpointGroups)), ref.Name)
}

// tasks lists the NEGs of s: every wanted NEG in every NEG zone, every wanted NEG of ours that
// exists in another zone (kept, emptied; removed when pre-provisioning no longer wants it, see
// retired), and every NEG of ours the Service no longer wants.
func (c *Controller) tasks(s *serviceSync) []*negTask {
	var out []*negTask
	seen := map[neg.Ref]bool{}
	for _, port := range slices.Sorted(maps.Keys(s.want)) {
		p := s.want[port]
		for _, z := range s.negZones {
			ref := neg.Ref{Zone: z, Name: p.Name}
			seen[ref] = true
			out = append(out, &negTask{ref: ref, port: p, active: true})
		}
	}
	owned := c.index.OwnedBy(s.key)
	refs := make([]neg.Ref, 0, len(owned))
	for ref := range owned {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, ref := range refs {
		if seen[ref] || !c.claimed(s.svc, s.want, ref, owned[ref]) {
			continue
		}
		port, ok := entryPort(s.svc, s.want, ref, owned[ref])
		p, isWanted := s.want[port]
		if ok && isWanted && p.Name == ref.Name {
			// Kept, emptied — unless only zone pre-provisioning wanted it (preprovision.go).
			out = append(out, &negTask{ref: ref, port: p, remove: c.retired(s, ref, owned[ref])})
			continue
		}
		out = append(out, &negTask{ref: ref, port: wanted.Port{Port: port, Name: ref.Name}, remove: true})
	}
	return out
}

// parallel runs fn for every task concurrently and waits.
func (c *Controller) parallel(tasks []*negTask, fn func(t *negTask)) {
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Go(func() { fn(t) })
	}
	wg.Wait()
}

// desiredEndpoints computes, per port and NEG zone, the endpoints from the Service's
// EndpointSlices — for every wanted port, and for the ports of NEGs being removed while the
// Service still has the port (a removed NEG kept in use follows the slices) — and reports
// endpoints of wanted ports that could not be mapped (deduplicated event).
func (c *Controller) desiredEndpoints(s *serviceSync, tasks []*negTask) (map[int32]map[string]neg.EndpointSet, error) {
	out := map[int32]map[string]neg.EndpointSet{}
	kept := map[int32]string{}
	for _, t := range tasks {
		if _, isWanted := s.want[t.port.Port]; t.remove && t.ready && !isWanted && s.svc != nil && wanted.ServicePortExists(s.svc, t.port.Port) {
			kept[t.port.Port] = wanted.ServicePortName(s.svc, t.port.Port)
		}
	}
	if len(s.want) == 0 && len(kept) == 0 {
		return out, nil
	}
	s.waiting = map[int32]map[string]neg.EndpointSet{}
	objs, err := c.slices.ByIndex(sliceServiceIndex, s.key.Namespace+"/"+s.key.Name)
	if err != nil {
		return nil, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	sl := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			sl = append(sl, es)
		}
	}
	c.warnNoIPv4(s, sl)
	var skipped []string
	for _, port := range slices.Sorted(maps.Keys(s.want)) {
		r := endpoints.Desired(s.want[port].PortName, sl, s.nodes, s.negZones, s.stack)
		out[port] = r.ByZone
		s.waiting[port] = r.Waiting
		c.observeSkipped(r.Skipped)
		if msg := skipSummary(r.Skipped); msg != "" {
			skipped = append(skipped, fmt.Sprintf("port %d: %s", port, msg))
		}
	}
	for port, name := range kept {
		r := endpoints.Desired(name, sl, s.nodes, s.negZones, s.stack)
		out[port], s.waiting[port] = r.ByZone, r.Waiting
	}
	if len(skipped) > 0 {
		c.warn(s.key, s.target, slotSkipped, ReasonEndpointsSkipped, c.unmappedHint(s,
			"Some endpoints cannot be placed in a NEG and are skipped ("+strings.Join(skipped, "; ")+")"))
	} else {
		c.warnings.Clear(s.key, slotSkipped)
	}
	return out, nil
}

// warnNoIPv4 records a NoIPv4Endpoints Warning when the Service has EndpointSlices but none of
// a family its NEGs take (FQDN or IPv6 slices only, e.g. a selector-less Service pointing at a
// host name; IPv6 slices are fine for an IPv6-only Service with IPv6-only NEGs): its NEGs stay
// empty, and the user is told why.
func (c *Controller) warnNoIPv4(s *serviceSync, sl []*discoveryv1.EndpointSlice) {
	var others []string
	for _, es := range sl {
		if es.AddressType == discoveryv1.AddressTypeIPv4 || s.stack == endpoints.IPv6 && es.AddressType == discoveryv1.AddressTypeIPv6 {
			c.warnings.Clear(s.key, slotNoIPv4)
			return
		}
		if !slices.Contains(others, string(es.AddressType)) {
			others = append(others, string(es.AddressType))
		}
	}
	if len(others) == 0 {
		c.warnings.Clear(s.key, slotNoIPv4)
		return
	}
	slices.Sort(others)
	c.warn(s.key, s.target, slotNoIPv4, ReasonNoIPv4Endpoints, fmt.Sprintf(
		"The Service's EndpointSlices hold only %s addresses: %s NEGs take IPv4 endpoints, so its NEGs stay empty",
		strings.Join(others, " and "), s.negType()))
}

// skipSummary renders skip counts as "NoNodeName=2, UnknownNode=1", leaving out the
// informational reasons (other families, pods waiting for their second address).
func skipSummary(skipped map[endpoints.SkipReason]int) string {
	var parts []string
	for r, n := range skipped {
		if r.Informational() || n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d", r, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
