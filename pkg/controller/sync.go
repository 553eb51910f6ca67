package controller

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// Warning slots (see warningMemory) used per Service.
const (
	slotAnnotation = "annotation"
	slotSkipped    = "skipped"
	slotStatus     = "status"
)

// serviceSync is the state of one sync of one Service.
type serviceSync struct {
	key    cache.ObjectName
	svc    *corev1.Service // nil when the Service is gone
	target *corev1.Service // what events are recorded on
	want   map[int32]portNEG
	// negZones are the zones with a candidate node; nodes maps node name to node.
	negZones []string
	nodes    map[string]zones.Node

	mu        sync.Mutex
	requeueAt time.Time // earliest time the Service must be synced again; zero = none
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
	port portNEG
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
	want, err := c.wantedNEGs(svc)
	var aerr *annotation.Error
	if errors.As(err, &aerr) {
		klog.FromContext(ctx).Info("Service NEG configuration rejected; leaving its NEGs as they are",
			"reason", aerr.Reason, "message", aerr.Message)
		c.warn(key, s.target, slotAnnotation, aerr.Reason, aerr.Message)
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	c.warnings.clear(key, slotAnnotation)
	s.want = want
	if len(want) == 0 && len(c.index.ownedBy(key)) == 0 {
		c.warnings.clearExcept(key, nil)
		c.syncBackends(s, nil)
		return 0, errors.Join(c.writeStatus(ctx, s, nil), c.syncSvcNEGs(ctx, s, nil, nil))
	}
	if err := c.loadNodes(s); err != nil {
		return 0, err
	}
	tasks := c.tasks(s)
	c.parallel(tasks, func(t *negTask) { c.prepare(ctx, s, t) })
	statusErr := c.writeStatus(ctx, s, tasks)
	c.syncBackends(s, tasks)

	desired, err := c.desiredEndpoints(s)
	if err != nil {
		return 0, err
	}
	c.parallel(tasks, func(t *negTask) {
		if t.ready {
			c.reconcile(ctx, s, t, desired[t.port.port][t.ref.Zone])
		}
	})
	svcNEGErr := c.syncSvcNEGs(ctx, s, tasks, desired)
	var after time.Duration
	if !s.requeueAt.IsZero() {
		after = max(s.requeueAt.Sub(c.clock.Now()), time.Millisecond)
	}
	return after, errors.Join(statusErr, svcNEGErr)
}

// loadNodes fills the NEG zones and node map of s from the node cache.
func (c *Controller) loadNodes(s *serviceSync) error {
	list, err := c.nodes.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("listing nodes: %w", err)
	}
	ns := make([]zones.Node, 0, len(list))
	for _, n := range list {
		ns = append(ns, zones.FromNode(n))
	}
	s.negZones = zones.CandidateZones(ns)
	s.nodes = zones.ByName(ns)
	return nil
}

// tasks lists the NEGs of s: every wanted NEG in every NEG zone, every wanted NEG of ours that
// exists in another zone (kept, emptied), and every NEG of ours the Service no longer wants.
func (c *Controller) tasks(s *serviceSync) []*negTask {
	var out []*negTask
	seen := map[neg.Ref]bool{}
	for _, port := range sortedPorts(s.want) {
		p := s.want[port]
		for _, z := range s.negZones {
			ref := neg.Ref{Zone: z, Name: p.name}
			seen[ref] = true
			out = append(out, &negTask{ref: ref, port: p, active: true})
		}
	}
	owned := c.index.ownedBy(s.key)
	refs := make([]neg.Ref, 0, len(owned))
	for ref := range owned {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		port, ok := descPort(owned[ref].desc)
		p, wanted := s.want[port]
		if ok && wanted && p.name == ref.Name {
			out = append(out, &negTask{ref: ref, port: p})
			continue
		}
		out = append(out, &negTask{ref: ref, port: portNEG{port: port, name: ref.Name}, remove: true})
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

// desiredEndpoints computes, per wanted port and NEG zone, the endpoints from the Service's
// EndpointSlices, and reports endpoints that could not be mapped (deduplicated event).
func (c *Controller) desiredEndpoints(s *serviceSync) (map[int32]map[string]neg.EndpointSet, error) {
	out := map[int32]map[string]neg.EndpointSet{}
	if len(s.want) == 0 {
		return out, nil
	}
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
	var skipped []string
	for _, port := range sortedPorts(s.want) {
		r := endpoints.Desired(s.want[port].portName, sl, s.nodes, s.negZones)
		out[port] = r.ByZone
		c.observeSkipped(r.Skipped)
		if msg := skipSummary(r.Skipped); msg != "" {
			skipped = append(skipped, fmt.Sprintf("port %d: %s", port, msg))
		}
	}
	if len(skipped) > 0 {
		c.warn(s.key, s.target, slotSkipped, ReasonEndpointsSkipped,
			"Some endpoints cannot be placed in a NEG and are skipped ("+strings.Join(skipped, "; ")+")")
	} else {
		c.warnings.clear(s.key, slotSkipped)
	}
	return out, nil
}

// skipSummary renders skip counts as "NoNodeName=2, UnknownNode=1", leaving out non-IPv4
// endpoints (dual-stack Services always have them).
func skipSummary(skipped map[endpoints.SkipReason]int) string {
	var parts []string
	for r, n := range skipped {
		if r == endpoints.SkipNotIPv4 || n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%d", r, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
