package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/svcneg"
)

// Warning event reasons of the ServiceNetworkEndpointGroup writer, recorded on the Service.
const (
	// ReasonSvcNEGConflict: an object with the NEG's name exists and belongs to another Service
	// or was not created by neg-controller (GKE's, say); it is left alone.
	ReasonSvcNEGConflict = "SvcNEGConflict"
	// ReasonSvcNEGUpdateFailed: a ServiceNetworkEndpointGroup could not be written or deleted.
	ReasonSvcNEGUpdateFailed = "SvcNEGUpdateFailed"
)

const (
	slotSvcNEG = "svcneg"
	// svcNEGRecheck is how often a missing CRD is looked for again (a discovery call).
	svcNEGRecheck = time.Minute
	// svcNEGLoadRetry caps the delay between attempts of a failing initial listing.
	svcNEGLoadRetry = time.Minute
	// maxProblems is how many per-zone problems a condition message lists.
	maxProblems = 5
)

// errSvcNEGNotLoaded is returned while the existing objects could not be listed yet: without
// them, the writer cannot tell what changed.
var errSvcNEGNotLoaded = errors.New("ServiceNetworkEndpointGroups not listed yet")

// svcNEGs keeps one ServiceNetworkEndpointGroup per NEG name (Service port) in step with the
// NEGs, at the end of every sync of the Service.
//
// There is no informer: the objects are listed once (the first time they are needed, and again
// every VerifyPeriod, which repairs objects deleted or changed by hand) and afterwards the
// writer's own writes keep the copy current. So a restart compares against what exists and
// rewrites nothing, and a sync that changes nothing writes nothing. A conflict or NotFound on a
// write re-reads the object. When the CRD is not installed, nothing is written: that is logged
// once and re-checked every svcNEGRecheck; when it appears, every NEG Service is re-synced.
type svcNEGs struct {
	client       *svcneg.Client // nil: disabled
	verifyPeriod time.Duration

	// loadMu serializes discovery and listing.
	loadMu        sync.Mutex
	checkedAt     time.Time // last discovery
	loggedMissing bool
	forbidden     bool // the CRD exists but listing its objects is forbidden (no RBAC for it)
	skipped       bool // a sync went without objects because the CRD was missing
	loadedAt      time.Time
	loadRetryAt   time.Time
	loadFailures  int

	mu      sync.Mutex
	support svcneg.Support
	gen     uint64
	objs    map[cache.ObjectName]*svcNEGEntry
	// byService maps a Service to the names of the objects labelled with it.
	byService map[cache.ObjectName]map[string]bool
}

// svcNEGEntry is the last known server state of one object; obj nil marks one we deleted.
type svcNEGEntry struct {
	obj *svcneg.ServiceNetworkEndpointGroup
	gen uint64
}

func newSvcNEGs(client *svcneg.Client, verifyPeriod time.Duration) *svcNEGs {
	return &svcNEGs{client: client, verifyPeriod: verifyPeriod,
		objs: map[cache.ObjectName]*svcNEGEntry{}, byService: map[cache.ObjectName]map[string]bool{}}
}

// syncSvcNEGs is the last step of a sync: write the object of every wanted NEG name of the
// Service when its content changed, and delete the objects of NEG names no longer wanted once
// their NEGs are gone (or kept because a backend service still uses them). tasks and desired
// are the sync's; both are nil when the Service wants and owns no NEG.
func (c *Controller) syncSvcNEGs(ctx context.Context, s *serviceSync, tasks []*negTask, desired map[int32]map[string]neg.EndpointSet) error {
	w := c.svcNEGs
	if w == nil || w.client == nil {
		return nil
	}
	c.forgetNEGFailures(s.key, tasks)
	if ok, err := c.svcNEGsReady(ctx); !ok || err != nil {
		return err
	}
	now := c.clock.Now()
	var errs []error
	wanted := map[string]bool{}
	if s.svc != nil {
		for _, port := range sortedPorts(s.want) {
			p := s.want[port]
			wanted[p.name] = true
			obs := c.observeSvcNEG(s, tasks, desired, p, now)
			if err := c.writeSvcNEG(ctx, s, p, obs, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range w.namesOf(s.key) {
		if wanted[name] || c.negsRemain(tasks, name) {
			continue
		}
		if err := c.deleteSvcNEG(ctx, s.key, name); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		c.warn(s.key, s.target, slotSvcNEG, ReasonSvcNEGUpdateFailed,
			fmt.Sprintf("Failed to update ServiceNetworkEndpointGroups: %v", err))
		return err
	}
	c.warnings.clear(s.key, slotSvcNEG)
	return nil
}

// svcNEGsReady reports whether objects can be written: the CRD is installed and the existing
// objects are loaded. It discovers the CRD (again every svcNEGRecheck while missing) and
// (re)lists the objects when needed.
func (c *Controller) svcNEGsReady(ctx context.Context) (bool, error) {
	w := c.svcNEGs
	logger := klog.FromContext(ctx)
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	now := c.clock.Now()
	if !w.currentSupport().Installed {
		if !w.checkedAt.IsZero() && now.Sub(w.checkedAt) < svcNEGRecheck {
			w.skipped = true
			return false, nil
		}
		w.checkedAt = now
		sup, err := w.client.Discover(ctx)
		if err == nil && !sup.Installed {
			if !w.loggedMissing {
				logger.Info("The ServiceNetworkEndpointGroup CRD is not installed: no svcneg objects are written "+
					"(apply the kustomize component manifests/components/svcneg-crd, or run with --enable-svcneg=false to silence this); looking again every minute",
					"crd", svcneg.CRDName)
				w.loggedMissing = true
			}
			w.skipped = true
			return false, nil
		}
		if err != nil {
			logger.Error(err, "Discovering the ServiceNetworkEndpointGroup API failed; retrying later", "retryIn", svcNEGRecheck)
			w.skipped = true
			return false, nil
		}
		if !w.forbidden {
			logger.Info("Writing ServiceNetworkEndpointGroups", "crd", svcneg.CRDName, "statusSubresource", sup.StatusSubresource)
		}
		w.setSupport(sup)
		w.loadedAt = time.Time{}
	}
	if !w.loadedAt.IsZero() && now.Sub(w.loadedAt) < w.verifyPeriod {
		return true, nil
	}
	if now.Before(w.loadRetryAt) {
		if w.loadedAt.IsZero() {
			return false, errSvcNEGNotLoaded
		}
		return true, nil // keep using the loaded copy until the retry
	}
	if err := c.loadSvcNEGs(ctx); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			// The CRD was removed, or exists (GKE's) without our RBAC for it: the kustomize
			// component manifests/components/svcneg was not applied.
			w.setSupport(svcneg.Support{})
			w.checkedAt, w.loadedAt = time.Time{}, time.Time{}
			return c.svcNEGsReadyAfterMissing(ctx, err)
		}
		w.loadFailures++
		w.loadRetryAt = now.Add(min(time.Duration(w.loadFailures)*time.Second, svcNEGLoadRetry))
		logger.Error(err, "Listing ServiceNetworkEndpointGroups failed", "retryAt", w.loadRetryAt)
		if w.loadedAt.IsZero() {
			return false, fmt.Errorf("%w: %w", errSvcNEGNotLoaded, err)
		}
		return true, nil
	}
	w.loadFailures, w.loadRetryAt = 0, time.Time{}
	w.loadedAt = now
	w.loggedMissing, w.forbidden = false, false
	if w.skipped {
		// Syncs went without objects: write them now.
		w.skipped = false
		c.enqueueNEGServices()
	}
	return true, nil
}

// svcNEGsReadyAfterMissing handles a CRD that disappeared or that we may not list (err): it is
// logged once.
func (c *Controller) svcNEGsReadyAfterMissing(ctx context.Context, err error) (bool, error) {
	w := c.svcNEGs
	if !w.loggedMissing {
		msg := "The ServiceNetworkEndpointGroup CRD was removed: no svcneg objects are written; looking again every minute"
		if apierrors.IsForbidden(err) {
			msg = "Not permitted to list ServiceNetworkEndpointGroups (apply the kustomize component manifests/components/svcneg, " +
				"or run with --enable-svcneg=false): no svcneg objects are written; looking again every minute"
		}
		klog.FromContext(ctx).Info(msg, "crd", svcneg.CRDName, "err", err)
		w.loggedMissing = true
	}
	w.forbidden = apierrors.IsForbidden(err)
	w.checkedAt = c.clock.Now()
	w.skipped = true
	return false, nil
}

// enqueueNEGServices enqueues every Service with the NEG annotation.
func (c *Controller) enqueueNEGServices() {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if _, ok := svc.Annotations[annotation.NEGKey]; ok {
			c.queue.Add(cache.MetaObjectToName(svc))
		}
	}
}

// loadSvcNEGs replaces the known objects with a listing of every object labelled as managed
// by a NEG controller, keeping what our own writes changed while the listing ran.
func (c *Controller) loadSvcNEGs(ctx context.Context) error {
	w := c.svcNEGs
	w.mu.Lock()
	startGen := w.gen
	w.mu.Unlock()
	list, err := w.client.List(ctx, labels.Set{svcneg.LabelManagedBy: svcneg.ManagedByValue}.String())
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[cache.ObjectName]bool{}
	for _, o := range list {
		k := cache.MetaObjectToName(o)
		seen[k] = true
		if e := w.objs[k]; e != nil && e.gen > startGen {
			continue
		}
		w.setLocked(k, o, false)
	}
	for k, e := range w.objs {
		if !seen[k] && e.gen <= startGen {
			w.setLocked(k, nil, false)
			delete(w.objs, k)
		}
	}
	klog.FromContext(ctx).V(2).Info("Loaded ServiceNetworkEndpointGroups", "count", len(list))
	return nil
}

// writeSvcNEG creates or updates the object of one wanted port when it differs from what obs
// says. An object of that name that belongs to someone else is left alone (warning, retried
// slowly).
func (c *Controller) writeSvcNEG(ctx context.Context, s *serviceSync, p portNEG, obs svcneg.Observed, now time.Time) error {
	w := c.svcNEGs
	key := cache.ObjectName{Namespace: s.key.Namespace, Name: p.name}
	owner := svcneg.Owner{Namespace: s.key.Namespace, Name: s.key.Name, UID: s.svc.UID, Port: p.port}
	cur := w.get(key)
	for attempt := 0; attempt < 3; attempt++ {
		var err error
		if cur == nil {
			err = c.createSvcNEG(ctx, key, owner, obs, now)
			if errors.Is(err, errSvcNEGAPIChanged) {
				s.requeueBy(now.Add(time.Second))
				return nil
			}
			if err == nil || !apierrors.IsAlreadyExists(err) {
				return err
			}
		} else {
			slot := ReasonSvcNEGConflict + ":" + p.name
			if !svcneg.BelongsTo(cur, s.key.Name) {
				c.warn(s.key, s.target, slot, ReasonSvcNEGConflict, fmt.Sprintf(
					"ServiceNetworkEndpointGroup %s already exists and %s (labels %s); "+
						"it is left alone and the NEGs' status is not reported there", key, whoseSvcNEG(cur), labels.Set(cur.Labels)))
				s.requeueBy(now.Add(c.cfg.Backoff.Max))
				return nil
			}
			c.warnings.clear(s.key, slot)
			if cur.DeletionTimestamp != nil {
				// Ours, being deleted (someone else's finalizer holds it): create it again
				// once it is gone.
				s.requeueBy(now.Add(c.cfg.Backoff.Max))
				return nil
			}
			err = c.updateSvcNEG(ctx, cur, owner, obs, now)
			if err == nil {
				return nil
			}
			if errors.Is(err, errSvcNEGAPIChanged) {
				s.requeueBy(now.Add(time.Second))
				return nil
			}
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return err
			}
		}
		// Our copy is stale: read the object again.
		cur, err = w.client.Get(ctx, key.Namespace, key.Name)
		if apierrors.IsNotFound(err) {
			w.put(key, nil)
			cur = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("reading ServiceNetworkEndpointGroup %s: %w", key, err)
		}
		w.put(key, cur)
	}
	return fmt.Errorf("writing ServiceNetworkEndpointGroup %s: it keeps changing", key)
}

// createSvcNEG creates the object (and its status, through the subresource if there is one).
func (c *Controller) createSvcNEG(ctx context.Context, key cache.ObjectName, owner svcneg.Owner, obs svcneg.Observed, now time.Time) error {
	w := c.svcNEGs
	obj := svcneg.New(key.Name, owner)
	obj.Status, _ = svcneg.NextStatus(obj.Status, obs, metav1.NewTime(now))
	created, err := w.client.Create(ctx, obj)
	if apierrors.IsNotFound(err) {
		// The CRD was removed (or the namespace is going away): look at the API again.
		w.lost()
		return nil
	}
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		// The namespace is being deleted, and the Service with it: nothing to report.
		return nil
	}
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			return err
		}
		return fmt.Errorf("creating ServiceNetworkEndpointGroup %s: %w", key, err)
	}
	w.put(key, created)
	klog.FromContext(ctx).V(2).Info("Created ServiceNetworkEndpointGroup", "svcneg", key)
	if !w.currentSupport().StatusSubresource {
		return nil
	}
	withStatus := created.DeepCopy()
	withStatus.Status = obj.Status
	updated, err := w.client.UpdateStatus(ctx, withStatus)
	if apierrors.IsNotFound(err) {
		return w.apiChanged(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("writing the status of ServiceNetworkEndpointGroup %s: %w", key, err)
	}
	w.put(key, updated)
	return nil
}

// updateSvcNEG writes what differs between cur and the wanted metadata and status; nothing when
// nothing does.
func (c *Controller) updateSvcNEG(ctx context.Context, cur *svcneg.ServiceNetworkEndpointGroup, owner svcneg.Owner, obs svcneg.Observed, now time.Time) error {
	w := c.svcNEGs
	key := cache.MetaObjectToName(cur)
	obj := cur.DeepCopy()
	metaChanged := svcneg.SetOwner(obj, owner)
	status, statusChanged := svcneg.NextStatus(cur.Status, obs, metav1.NewTime(now))
	if !metaChanged && !statusChanged {
		return nil
	}
	logger := klog.FromContext(ctx)
	subresource := w.currentSupport().StatusSubresource
	if metaChanged || !subresource {
		if !subresource {
			obj.Status = status
		}
		updated, err := w.client.Update(ctx, obj)
		if err != nil {
			return err
		}
		w.put(key, updated)
		logger.V(2).Info("Updated ServiceNetworkEndpointGroup", "svcneg", key)
		if !subresource && statusChanged && svcneg.StatusEqual(updated.Status, cur.Status) {
			// The server dropped the status: the CRD has a status subresource now.
			return w.apiChanged(ctx, key)
		}
		if !subresource || !statusChanged {
			return nil
		}
		obj = updated.DeepCopy()
	}
	obj.Status = status
	updated, err := w.client.UpdateStatus(ctx, obj)
	if apierrors.IsNotFound(err) {
		// No /status (the CRD lost its subresource, e.g. GKE's replaced ours) or no object.
		return w.apiChanged(ctx, key)
	}
	if err != nil {
		return err
	}
	w.put(key, updated)
	logger.V(2).Info("Updated ServiceNetworkEndpointGroup status", "svcneg", key)
	return nil
}

// deleteSvcNEG deletes an object of ours of the Service that names a NEG it no longer wants.
// Objects we did not create (GKE's) are never deleted.
func (c *Controller) deleteSvcNEG(ctx context.Context, svc cache.ObjectName, name string) error {
	w := c.svcNEGs
	key := cache.ObjectName{Namespace: svc.Namespace, Name: name}
	cur := w.get(key)
	if cur == nil || !svcneg.BelongsTo(cur, svc.Name) {
		return nil
	}
	err := w.client.Delete(ctx, key.Namespace, key.Name, cur.UID)
	if apierrors.IsConflict(err) {
		// Replaced by another object of that name (UID precondition): re-read it next time.
		w.put(key, nil)
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting ServiceNetworkEndpointGroup %s: %w", key, err)
	}
	w.put(key, nil)
	klog.FromContext(ctx).V(2).Info("Deleted ServiceNetworkEndpointGroup", "svcneg", key)
	return nil
}

// errSvcNEGAPIChanged: a write showed that the CRD is not what discovery said (its status
// subresource came or went); the sync is retried after the API is discovered again.
var errSvcNEGAPIChanged = errors.New("the ServiceNetworkEndpointGroup CRD changed")

// apiChanged makes the next sync discover the API again and returns errSvcNEGAPIChanged.
func (w *svcNEGs) apiChanged(ctx context.Context, key cache.ObjectName) error {
	klog.FromContext(ctx).Info("The ServiceNetworkEndpointGroup CRD's status subresource is not what discovery said; looking again",
		"svcneg", key)
	w.lost()
	return errSvcNEGAPIChanged
}

// lost makes the next sync discover the API and list the objects again.
func (w *svcNEGs) lost() {
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	w.setSupport(svcneg.Support{})
	w.checkedAt, w.loadedAt = time.Time{}, time.Time{}
}

// currentSupport returns what the API server serves.
func (w *svcNEGs) currentSupport() svcneg.Support {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.support
}

func (w *svcNEGs) setSupport(s svcneg.Support) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.support = s
}

// get returns a copy of the known object key, or nil.
func (w *svcNEGs) get(key cache.ObjectName) *svcneg.ServiceNetworkEndpointGroup {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.objs[key]; e != nil && e.obj != nil {
		return e.obj.DeepCopy()
	}
	return nil
}

// put records the server state of key after our own write (nil: deleted).
func (w *svcNEGs) put(key cache.ObjectName, obj *svcneg.ServiceNetworkEndpointGroup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setLocked(key, obj, true)
}

func (w *svcNEGs) setLocked(key cache.ObjectName, obj *svcneg.ServiceNetworkEndpointGroup, local bool) {
	if old := w.objs[key]; old != nil && old.obj != nil && svcneg.Ours(old.obj) {
		svc := serviceOf(old.obj)
		delete(w.byService[svc], key.Name)
		if len(w.byService[svc]) == 0 {
			delete(w.byService, svc)
		}
	}
	e := &svcNEGEntry{obj: obj}
	if local {
		w.gen++
		e.gen = w.gen
	}
	w.objs[key] = e
	if obj != nil && svcneg.Ours(obj) {
		svc := serviceOf(obj)
		if w.byService[svc] == nil {
			w.byService[svc] = map[string]bool{}
		}
		w.byService[svc][key.Name] = true
	}
}

// namesOf returns the names of the known objects of ours labelled with the Service, sorted.
func (w *svcNEGs) namesOf(svc cache.ObjectName) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.byService[svc]))
	for n := range w.byService[svc] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// whoseSvcNEG says, for a conflict warning, why an object is not the Service's.
func whoseSvcNEG(o *svcneg.ServiceNetworkEndpointGroup) string {
	if !svcneg.Ours(o) {
		return "was not created by neg-controller (GKE's NEG controller or someone else made it; it has no " +
			svcneg.LabelCreatedBy + " label)"
	}
	return "belongs to Service " + o.Labels[svcneg.LabelServiceName]
}

// serviceOf returns the Service an object's labels name.
func serviceOf(o *svcneg.ServiceNetworkEndpointGroup) cache.ObjectName {
	return cache.ObjectName{Namespace: o.Namespace, Name: o.Labels[svcneg.LabelServiceName]}
}
