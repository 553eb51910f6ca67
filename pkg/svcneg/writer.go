package svcneg

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
	"k8s.io/utils/clock"
)

const (
	// recheckPeriod is how often a missing CRD is looked for again (a discovery call).
	recheckPeriod = time.Minute
	// loadRetryMax caps the delay between attempts of a failing initial listing.
	loadRetryMax = time.Minute
)

// errNotLoaded is returned while the existing objects could not be listed yet: without them, the
// writer cannot tell what changed.
var errNotLoaded = errors.New("ServiceNetworkEndpointGroups not listed yet")

// WriterConfig is everything NewWriter needs.
type WriterConfig struct {
	// Client reads and writes the objects. Required.
	Client *Client
	// ResyncPeriod is how old the in-memory copy of the objects may get before they are listed
	// again (repairing objects deleted or changed by hand).
	ResyncPeriod time.Duration
	// Clock drives the periods; default the real clock.
	Clock clock.Clock
}

// Writer keeps one ServiceNetworkEndpointGroup per NEG name (Service port) in step with what the
// NEG controller observed, as GKE's NEG controller does.
//
// There is no informer: the objects are listed once (the first time they are needed, and again
// every ResyncPeriod) and afterwards the writer's own writes keep the copy current. So a restart
// compares against what exists and rewrites nothing, and a sync that changes nothing writes
// nothing. A conflict or NotFound on a write re-reads the object. When the CRD is not installed,
// nothing is written: that is logged once and re-checked every recheckPeriod; when it appears,
// Ready says so (catchUp) so the caller can sync every NEG Service again. Objects neg-controller
// did not create (GKE's) are never changed or deleted.
type Writer struct {
	cfg   WriterConfig
	clock clock.Clock

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
	support Support
	gen     uint64
	objs    map[cache.ObjectName]*entry
	// byService maps a Service to the names of the objects labelled with it.
	byService map[cache.ObjectName]map[string]bool
}

// entry is the last known server state of one object; obj nil marks one we deleted.
type entry struct {
	obj *ServiceNetworkEndpointGroup
	gen uint64
}

// NewWriter returns a Writer.
func NewWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Client == nil {
		return nil, errors.New("svcneg: a Client is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Writer{cfg: cfg, clock: cfg.Clock, objs: map[cache.ObjectName]*entry{},
		byService: map[cache.ObjectName]map[string]bool{}}, nil
}

// Result is what Write did beyond its error.
type Result struct {
	// Conflict, when not empty, says why an existing object of the NEG's name is left alone
	// (another Service's, or not neg-controller's); the write is retried slowly.
	Conflict string
	// RetryAfter, when not zero, asks for the write to be tried again after this long: the
	// object is being deleted, is someone else's, or the API changed under the write.
	RetryAfter time.Duration
}

// Write creates or updates the object of the NEG name of one Service port (owner) when it
// differs from what obs says. slowRetry is the delay asked for when the object cannot be
// written now (someone else's, or being deleted).
func (w *Writer) Write(ctx context.Context, owner Owner, name string, obs Observed, slowRetry time.Duration) (Result, error) {
	now := w.clock.Now()
	key := cache.ObjectName{Namespace: owner.Namespace, Name: name}
	cur := w.get(key)
	// Not retry.RetryOnConflict: an attempt ends in a Result (RetryAfter, Conflict) as well as
	// an error, NotFound on update switches to create, and the re-read after a lost race
	// refreshes the writer's cache; three attempts in a row, like retry.OnError with no delay.
	for attempt := 0; attempt < 3; attempt++ {
		var err error
		if cur == nil {
			err = w.create(ctx, key, owner, obs, now)
			if errors.Is(err, errAPIChanged) {
				return Result{RetryAfter: time.Second}, nil
			}
			if err == nil || !apierrors.IsAlreadyExists(err) {
				return Result{}, err
			}
		} else {
			if !BelongsTo(cur, owner.Name) {
				return Result{RetryAfter: slowRetry, Conflict: fmt.Sprintf(
					"ServiceNetworkEndpointGroup %s already exists and %s (labels %s); "+
						"it is left alone and the NEGs' status is not reported there", key, whose(cur), labels.Set(cur.Labels))}, nil
			}
			if cur.DeletionTimestamp != nil {
				// Ours, being deleted (someone else's finalizer holds it): create it again
				// once it is gone.
				return Result{RetryAfter: slowRetry}, nil
			}
			err = w.update(ctx, cur, owner, obs, now)
			if err == nil {
				return Result{}, nil
			}
			if errors.Is(err, errAPIChanged) {
				return Result{RetryAfter: time.Second}, nil
			}
			if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return Result{}, err
			}
		}
		// Our copy is stale: read the object again.
		cur, err = w.cfg.Client.Get(ctx, key.Namespace, key.Name)
		if apierrors.IsNotFound(err) {
			w.put(key, nil)
			cur = nil
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("reading ServiceNetworkEndpointGroup %s: %w", key, err)
		}
		w.put(key, cur)
	}
	return Result{}, fmt.Errorf("writing ServiceNetworkEndpointGroup %s: it keeps changing", key)
}

// Ready reports whether objects can be written: the CRD is installed and the existing objects
// are loaded. It discovers the CRD (again every recheckPeriod while missing) and (re)lists the
// objects when needed. catchUp is true the first time objects can be written after syncs went
// without them: the caller should sync every NEG Service again.
func (w *Writer) Ready(ctx context.Context) (ready, catchUp bool, err error) {
	logger := klog.FromContext(ctx)
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	now := w.clock.Now()
	if !w.currentSupport().Installed {
		if !w.checkedAt.IsZero() && now.Sub(w.checkedAt) < recheckPeriod {
			w.skipped = true
			return false, false, nil
		}
		w.checkedAt = now
		sup, err := w.cfg.Client.Discover(ctx)
		if err == nil && !sup.Installed {
			if !w.loggedMissing {
				logger.Info("The ServiceNetworkEndpointGroup CRD is not installed: no svcneg objects are written "+
					"(apply the kustomize component manifests/components/svcneg-crd, or run with --enable-svcneg=false to silence this); looking again every minute",
					"crd", CRDName)
				w.loggedMissing = true
			}
			w.skipped = true
			return false, false, nil
		}
		if err != nil {
			logger.Error(err, "Discovering the ServiceNetworkEndpointGroup API failed; retrying later", "retryIn", recheckPeriod)
			w.skipped = true
			return false, false, nil
		}
		if !w.forbidden {
			logger.Info("Writing ServiceNetworkEndpointGroups", "crd", CRDName, "statusSubresource", sup.StatusSubresource)
		}
		w.setSupport(sup)
		w.loadedAt = time.Time{}
	}
	if !w.loadedAt.IsZero() && now.Sub(w.loadedAt) < w.cfg.ResyncPeriod {
		return true, false, nil
	}
	if now.Before(w.loadRetryAt) {
		if w.loadedAt.IsZero() {
			return false, false, errNotLoaded
		}
		return true, false, nil // keep using the loaded copy until the retry
	}
	if err := w.load(ctx); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
			// The CRD was removed, or exists (GKE's) without our RBAC for it: the kustomize
			// component manifests/components/svcneg was not applied.
			w.setSupport(Support{})
			w.checkedAt, w.loadedAt = time.Time{}, time.Time{}
			return w.readyAfterMissing(ctx, err)
		}
		w.loadFailures++
		w.loadRetryAt = now.Add(min(time.Duration(w.loadFailures)*time.Second, loadRetryMax))
		logger.Error(err, "Listing ServiceNetworkEndpointGroups failed", "retryAt", w.loadRetryAt)
		if w.loadedAt.IsZero() {
			return false, false, fmt.Errorf("%w: %w", errNotLoaded, err)
		}
		return true, false, nil
	}
	w.loadFailures, w.loadRetryAt = 0, time.Time{}
	w.loadedAt = now
	w.loggedMissing, w.forbidden = false, false
	// Syncs that went without objects must write them now.
	catchUp = w.skipped
	w.skipped = false
	return true, catchUp, nil
}

// readyAfterMissing handles a CRD that disappeared or that we may not list (err): it is
// logged once.
func (w *Writer) readyAfterMissing(ctx context.Context, err error) (bool, bool, error) {
	if !w.loggedMissing {
		msg := "The ServiceNetworkEndpointGroup CRD was removed: no svcneg objects are written; looking again every minute"
		if apierrors.IsForbidden(err) {
			msg = "Not permitted to list ServiceNetworkEndpointGroups (apply the kustomize component manifests/components/svcneg, " +
				"or run with --enable-svcneg=false): no svcneg objects are written; looking again every minute"
		}
		klog.FromContext(ctx).Info(msg, "crd", CRDName, "err", err)
		w.loggedMissing = true
	}
	w.forbidden = apierrors.IsForbidden(err)
	w.checkedAt = w.clock.Now()
	w.skipped = true
	return false, false, nil
}

// load replaces the known objects with a listing of every object labelled as managed
// by a NEG controller, keeping what our own writes changed while the listing ran.
func (w *Writer) load(ctx context.Context) error {
	w.mu.Lock()
	startGen := w.gen
	w.mu.Unlock()
	list, err := w.cfg.Client.List(ctx, labels.Set{LabelManagedBy: ManagedByValue}.String())
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

// create creates the object (and its status, through the subresource if there is one).
func (w *Writer) create(ctx context.Context, key cache.ObjectName, owner Owner, obs Observed, now time.Time) error {
	obj := New(key.Name, owner)
	obj.Status, _ = NextStatus(obj.Status, obs, metav1.NewTime(now))
	created, err := w.cfg.Client.Create(ctx, obj)
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
	updated, err := w.cfg.Client.UpdateStatus(ctx, withStatus)
	if apierrors.IsNotFound(err) {
		return w.apiChanged(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("writing the status of ServiceNetworkEndpointGroup %s: %w", key, err)
	}
	w.put(key, updated)
	return nil
}

// update writes what differs between cur and the wanted metadata and status; nothing when
// nothing does.
func (w *Writer) update(ctx context.Context, cur *ServiceNetworkEndpointGroup, owner Owner, obs Observed, now time.Time) error {
	key := cache.MetaObjectToName(cur)
	obj := cur.DeepCopy()
	metaChanged := SetOwner(obj, owner)
	status, statusChanged := NextStatus(cur.Status, obs, metav1.NewTime(now))
	if !metaChanged && !statusChanged {
		return nil
	}
	logger := klog.FromContext(ctx)
	subresource := w.currentSupport().StatusSubresource
	if metaChanged || !subresource {
		if !subresource {
			obj.Status = status
		}
		updated, err := w.cfg.Client.Update(ctx, obj)
		if err != nil {
			return err
		}
		w.put(key, updated)
		logger.V(2).Info("Updated ServiceNetworkEndpointGroup", "svcneg", key)
		if !subresource && statusChanged && StatusEqual(updated.Status, cur.Status) {
			// The server dropped the status: the CRD has a status subresource now.
			return w.apiChanged(ctx, key)
		}
		if !subresource || !statusChanged {
			return nil
		}
		obj = updated.DeepCopy()
	}
	obj.Status = status
	updated, err := w.cfg.Client.UpdateStatus(ctx, obj)
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

// Delete deletes the object of ours of the Service svc that names a NEG it no longer wants.
// Objects we did not create (GKE's) are never deleted.
func (w *Writer) Delete(ctx context.Context, svc cache.ObjectName, name string) error {
	key := cache.ObjectName{Namespace: svc.Namespace, Name: name}
	cur := w.get(key)
	if cur == nil || !BelongsTo(cur, svc.Name) {
		return nil
	}
	err := w.cfg.Client.Delete(ctx, key.Namespace, key.Name, cur.UID)
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

// errAPIChanged: a write showed that the CRD is not what discovery said (its status
// subresource came or went); the sync is retried after the API is discovered again.
var errAPIChanged = errors.New("the ServiceNetworkEndpointGroup CRD changed")

// apiChanged makes the next sync discover the API again and returns errAPIChanged.
func (w *Writer) apiChanged(ctx context.Context, key cache.ObjectName) error {
	klog.FromContext(ctx).Info("The ServiceNetworkEndpointGroup CRD's status subresource is not what discovery said; looking again",
		"svcneg", key)
	w.lost()
	return errAPIChanged
}

// lost makes the next sync discover the API and list the objects again.
func (w *Writer) lost() {
	w.loadMu.Lock()
	defer w.loadMu.Unlock()
	w.setSupport(Support{})
	w.checkedAt, w.loadedAt = time.Time{}, time.Time{}
}

// currentSupport returns what the API server serves.
func (w *Writer) currentSupport() Support {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.support
}

func (w *Writer) setSupport(s Support) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.support = s
}

// get returns a copy of the known object key, or nil.
func (w *Writer) get(key cache.ObjectName) *ServiceNetworkEndpointGroup {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.objs[key]; e != nil && e.obj != nil {
		return e.obj.DeepCopy()
	}
	return nil
}

// put records the server state of key after our own write (nil: deleted).
func (w *Writer) put(key cache.ObjectName, obj *ServiceNetworkEndpointGroup) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setLocked(key, obj, true)
}

func (w *Writer) setLocked(key cache.ObjectName, obj *ServiceNetworkEndpointGroup, local bool) {
	if old := w.objs[key]; old != nil && old.obj != nil && Ours(old.obj) {
		svc := serviceOf(old.obj)
		delete(w.byService[svc], key.Name)
		if len(w.byService[svc]) == 0 {
			delete(w.byService, svc)
		}
	}
	e := &entry{obj: obj}
	if local {
		w.gen++
		e.gen = w.gen
	}
	w.objs[key] = e
	if obj != nil && Ours(obj) {
		svc := serviceOf(obj)
		if w.byService[svc] == nil {
			w.byService[svc] = map[string]bool{}
		}
		w.byService[svc][key.Name] = true
	}
}

// NamesOf returns the names of the known objects of ours labelled with the Service, sorted.
func (w *Writer) NamesOf(svc cache.ObjectName) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.byService[svc]))
	for n := range w.byService[svc] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// whose says, for a conflict warning, why an object is not the Service's.
func whose(o *ServiceNetworkEndpointGroup) string {
	if !Ours(o) {
		return "was not created by neg-controller (GKE's NEG controller or someone else made it; it has no " +
			LabelCreatedBy + " label)"
	}
	return "belongs to Service " + o.Labels[LabelServiceName]
}

// serviceOf returns the Service an object's labels name.
func serviceOf(o *ServiceNetworkEndpointGroup) cache.ObjectName {
	return cache.ObjectName{Namespace: o.Namespace, Name: o.Labels[LabelServiceName]}
}
