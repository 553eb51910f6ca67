package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/keyqueue"
)

// QueueName names the reflector's work queue (and its metrics).
const QueueName = "neg-readiness-reflector"

// Defaults of Config.
const (
	DefaultPollInterval    = time.Second
	DefaultErrorBackoff    = 5 * time.Second
	DefaultMaxErrorBackoff = 100 * time.Second // GKE's: the NEG API quota is per 100 s
	DefaultWorkers         = 4
)

// HealthLister is the part of gce.Cloud the reflector uses.
type HealthLister interface {
	// ListNetworkEndpoints lists a NEG's endpoints, with health when withHealth.
	ListNetworkEndpoints(ctx context.Context, zone, name string, withHealth bool) ([]gce.EndpointHealth, error)
}

// Config configures a Reflector. Zero durations and counts take the defaults.
type Config struct {
	// KubeClient patches pod status; EventClient records events (defaults to KubeClient).
	KubeClient, EventClient kubernetes.Interface
	// Informers provides pods, Services and nodes; New registers its handlers, the caller
	// starts the factory.
	Informers informers.SharedInformerFactory
	// Cloud lists NEG endpoints with health.
	Cloud HealthLister
	// Timeout after pod creation at which a waiting pod is marked True (DefaultTimeout).
	Timeout time.Duration
	// WithoutHealthCheck: what pods of a NEG in no health-checked backend service get
	// (WithoutHealthCheckWait when empty).
	WithoutHealthCheck WithoutHealthCheck
	// PollInterval between health listings of a NEG while pods wait on it.
	PollInterval time.Duration
	// ErrorBackoff is the first wait after a failed listing, doubled up to MaxErrorBackoff.
	ErrorBackoff, MaxErrorBackoff time.Duration
	// Workers is the number of pods processed in parallel.
	Workers int
	// Clock drives timeouts, polls and the queue (real clock when nil).
	Clock clock.WithTicker
	// QueueMetrics provides the work queue's metrics (none when nil).
	QueueMetrics workqueue.MetricsProvider
	// Metrics records gate latencies (none when nil); Registerer, when set, also gets the
	// gauge of waiting pods.
	Metrics    *Metrics
	Registerer prometheus.Registerer
	// Hybrid places the pods of hybrid NEGs (Services whose annotation.SourceOf is hybrid).
	Hybrid Placement
	// Bound returns the NEGs NetworkEndpointGroupBindings bind to Services (nil: none); their
	// pods are gated too. Call ServiceChanged when they change.
	Bound Binder
}

func (c *Config) defaults() {
	if c.EventClient == nil {
		c.EventClient = c.KubeClient
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.WithoutHealthCheck == "" {
		c.WithoutHealthCheck = WithoutHealthCheckWait
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ErrorBackoff <= 0 {
		c.ErrorBackoff = DefaultErrorBackoff
	}
	if c.MaxErrorBackoff < c.ErrorBackoff {
		c.MaxErrorBackoff = max(DefaultMaxErrorBackoff, c.ErrorBackoff)
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
}

// Reflector sets the readiness gate condition of pods (see the package documentation).
type Reflector struct {
	cfg      Config
	podIndex cache.Indexer // with waitingByNamespace; pods needing no work may be metadata only (NeedsWork)
	services corelisters.ServiceLister
	nodes    corelisters.NodeLister
	synced   []cache.InformerSynced
	queue    *keyqueue.Queue

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder

	runCtx  context.Context
	pollers sync.WaitGroup

	mu       sync.Mutex
	waiting  map[negRef]map[cache.ObjectName]struct{} // pods waiting on each NEG
	podNEGs  map[cache.ObjectName][]negRef            // NEGs each waiting pod waits on
	polling  map[negRef]bool                          // NEGs with a running poller
	listings map[negRef]*listing                      // latest listing of each polled NEG
}

// New creates a Reflector and registers its informer handlers.
func New(cfg Config) (*Reflector, error) {
	cfg.defaults()
	if cfg.KubeClient == nil || cfg.Informers == nil || cfg.Cloud == nil {
		return nil, errors.New("readiness: KubeClient, Informers and Cloud are required")
	}
	if cfg.WithoutHealthCheck != WithoutHealthCheckWait && cfg.WithoutHealthCheck != WithoutHealthCheckReady {
		return nil, fmt.Errorf("readiness: unknown WithoutHealthCheck %q", cfg.WithoutHealthCheck)
	}
	podInf := cfg.Informers.Core().V1().Pods()
	svcInf := cfg.Informers.Core().V1().Services()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	r := &Reflector{
		cfg:      cfg,
		services: svcInf.Lister(),
		nodes:    nodeInf.Lister(),
		synced:   []cache.InformerSynced{podInf.Informer().HasSynced, svcInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		waiting:  map[negRef]map[cache.ObjectName]struct{}{},
		podNEGs:  map[cache.ObjectName][]negRef{},
		polling:  map[negRef]bool{},
		listings: map[negRef]*listing{},
	}
	r.queue = keyqueue.New(keyqueue.Config{Name: QueueName, Workers: cfg.Workers, LogKey: "pod", Clock: cfg.Clock,
		MetricsProvider: cfg.QueueMetrics, Sync: func(ctx context.Context, key cache.ObjectName) keyqueue.Result {
			err := r.sync(ctx, key)
			if err != nil {
				klog.FromContext(ctx).Error(err, "Updating the readiness gate condition failed; will retry")
			}
			return keyqueue.Result{Err: err}
		}})
	cfg.Metrics.registerWaiting(cfg.Registerer, func() float64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return float64(len(r.podNEGs))
	})
	r.broadcaster = record.NewBroadcaster()
	r.recorder = r.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventSource})
	if err := podInf.Informer().AddIndexers(cache.Indexers{waitingByNamespace: indexWaitingPods}); err != nil {
		return nil, err
	}
	r.podIndex = podInf.Informer().GetIndexer()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.onPod,
		UpdateFunc: func(_, obj any) { r.onPod(obj) },
		DeleteFunc: r.onPod,
	}); err != nil {
		return nil, err
	}
	if _, err := svcInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.onService,
		UpdateFunc: func(old, obj any) { r.onService(old); r.onService(obj) },
		DeleteFunc: r.onService,
	}); err != nil {
		return nil, err
	}
	return r, nil
}

// HasSynced reports whether the informer caches have synced.
func (r *Reflector) HasSynced() bool {
	for _, s := range r.synced {
		if !s() {
			return false
		}
	}
	return true
}

// onPod queues a pod that needs work or was waiting. The cache may hold only the metadata of
// pods that need no work (see NeedsWork).
func (r *Reflector) onPod(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	pod, _ := obj.(*corev1.Pod)
	key := cache.MetaObjectToName(m)
	if NeedsWork(pod) || r.isWaiting(key) {
		r.queue.Add(key)
	}
}

// waitingByNamespace indexes the pods in need of work (see NeedsWork) by namespace, so that a
// Service event looks only at those, not at every pod of its namespace: the controller's own
// neg-status writes and resyncs make Service events frequent, and gated pods are few.
const waitingByNamespace = "readiness/waiting-by-namespace"

func indexWaitingPods(obj any) ([]string, error) {
	if pod, ok := obj.(*corev1.Pod); ok && NeedsWork(pod) {
		return []string{pod.Namespace}, nil
	}
	return nil, nil
}

// onService queues the pods in need of work that the Service selects.
func (r *Reflector) onService(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	svc, ok := obj.(*corev1.Service)
	if !ok || len(svc.Spec.Selector) == 0 {
		return
	}
	objs, err := r.podIndex.ByIndex(waitingByNamespace, svc.Namespace)
	if err != nil || len(objs) == 0 {
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && sel.Matches(labels.Set(p.Labels)) {
			r.queue.Add(cache.MetaObjectToName(p))
		}
	}
}

// ServiceChanged queues the waiting pods of Service namespace/name: its bound NEGs changed
// (Config.Bound).
func (r *Reflector) ServiceChanged(namespace, name string) {
	if svc, err := r.services.Services(namespace).Get(name); err == nil {
		r.onService(svc)
	}
}

// Run processes pods until ctx is done, after the caches synced. It returns once the workers
// and pollers have stopped.
func (r *Reflector) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx).WithName("readiness")
	ctx = klog.NewContext(ctx, logger)
	r.runCtx = ctx
	r.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: r.cfg.EventClient.CoreV1().Events("")})
	defer r.broadcaster.Shutdown()
	defer r.queue.ShutDown()
	if !cache.WaitForNamedCacheSyncWithContext(ctx, r.synced...) {
		return fmt.Errorf("readiness: caches did not sync: %w", ctx.Err())
	}
	logger.Info("Starting the readiness reflector", "timeout", r.cfg.Timeout,
		"withoutHealthCheck", r.cfg.WithoutHealthCheck, "workers", r.cfg.Workers)
	r.queue.Run(ctx)
	r.pollers.Wait()
	return nil
}

// sync decides and writes the condition of one pod, registers it with the pollers of the NEGs
// it waits on, and queues it again at its timeout.
func (r *Reflector) sync(ctx context.Context, key cache.ObjectName) error {
	obj, _, err := r.podIndex.GetByKey(key.String())
	if err != nil {
		return err
	}
	// Gone, or cached as metadata only: nothing to do either way.
	pod, _ := obj.(*corev1.Pod)
	if !NeedsWork(pod) {
		r.setWaiting(key, nil)
		return nil
	}
	all, err := r.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return err
	}
	var bound []BoundNEG
	if r.cfg.Bound != nil {
		bound = r.cfg.Bound(pod.Namespace)
	}
	svcs := negServices(all, pod)
	bsvcs := boundServices(all, pod, bound)
	var node *corev1.Node
	if pod.Spec.NodeName != "" {
		node, _ = r.nodes.Get(pod.Spec.NodeName) // unknown node: no targets yet
	}
	negs, targets := podTargets(svcs, pod, node, r.cfg.Hybrid)
	negs, targets = boundTargets(bsvcs, bound, pod, node, negs, targets)
	svcs = gatingServices(all, pod, bound)
	created, now := pod.CreationTimestamp.Time, r.cfg.Clock.Now()
	d := decide(input{gated: len(svcs) > 0, negs: negs, targets: targets, listings: r.listingsFor(targets, created),
		created: created, now: now, timeout: r.cfg.Timeout, withoutHC: r.cfg.WithoutHealthCheck})
	if d.status == corev1.ConditionTrue {
		r.setWaiting(key, nil)
	} else {
		var refs []negRef
		for _, t := range targets {
			refs = append(refs, t.ref)
		}
		r.setWaiting(key, refs)
		r.queue.AddAfter(key, created.Add(r.cfg.Timeout).Sub(now))
	}
	return r.write(ctx, pod, d)
}

// write patches the condition when it differs and records an event when the reason changes.
func (r *Reflector) write(ctx context.Context, pod *corev1.Pod, d decision) error {
	old := condition(pod)
	if old != nil && old.Status == d.status && old.Reason == d.reason && old.Message == d.message {
		return nil
	}
	transition := metav1.NewTime(r.cfg.Clock.Now())
	if old != nil && old.Status == d.status {
		transition = old.LastTransitionTime
	}
	patch := map[string]any{"status": map[string]any{"conditions": []corev1.PodCondition{{
		Type: GateType, Status: d.status, Reason: d.reason, Message: d.message, LastTransitionTime: transition,
	}}}}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	if _, err := r.cfg.KubeClient.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.StrategicMergePatchType, body,
		metav1.PatchOptions{}, "status"); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("patching the status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	klog.FromContext(ctx).V(2).Info("Updated the readiness gate condition", "pod", klog.KObj(pod),
		"status", d.status, "reason", d.reason, "message", d.message)
	if old == nil || old.Reason != d.reason {
		r.recorder.Event(pod, corev1.EventTypeNormal, d.reason, d.message)
	}
	if d.status == corev1.ConditionTrue && (old == nil || old.Status != corev1.ConditionTrue) {
		r.cfg.Metrics.observeGate(d.reason, transition.Sub(pod.CreationTimestamp.Time))
	}
	return nil
}

// listingsFor returns the latest listings of the targets' NEGs taken after created.
func (r *Reflector) listingsFor(targets []target, created time.Time) map[negRef]*listing {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[negRef]*listing{}
	for _, t := range targets {
		if l := r.listings[t.ref]; l != nil && !l.at.Before(created) {
			out[t.ref] = l
		}
	}
	return out
}

func (r *Reflector) isWaiting(key cache.ObjectName) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.podNEGs[key]
	return ok
}

// setWaiting records the NEGs the pod waits on (none: it waits on nothing) and starts a
// poller for each NEG that has none.
func (r *Reflector) setWaiting(key cache.ObjectName, refs []negRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ref := range r.podNEGs[key] {
		delete(r.waiting[ref], key)
		if len(r.waiting[ref]) == 0 {
			delete(r.waiting, ref)
		}
	}
	delete(r.podNEGs, key)
	if len(refs) == 0 {
		return
	}
	r.podNEGs[key] = refs
	for _, ref := range refs {
		if r.waiting[ref] == nil {
			r.waiting[ref] = map[cache.ObjectName]struct{}{}
		}
		r.waiting[ref][key] = struct{}{}
		if !r.polling[ref] && r.runCtx != nil {
			r.polling[ref] = true
			r.pollers.Go(func() { r.poll(r.runCtx, ref) })
		}
	}
}

// keepPolling reports whether pods wait on ref; when none does it marks the poller stopped
// and forgets the NEG's listing (so it is never used stale).
func (r *Reflector) keepPolling(ref negRef) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.waiting[ref]) == 0 {
		delete(r.polling, ref)
		delete(r.listings, ref)
		return false
	}
	return true
}

// poll lists ref with health every PollInterval while pods wait on it, queueing them after
// each listing; after errors it backs off exponentially.
func (r *Reflector) poll(ctx context.Context, ref negRef) {
	logger := klog.FromContext(ctx).WithValues("zone", ref.Zone, "neg", ref.Name)
	logger.V(4).Info("Polling NEG health")
	var backoff time.Duration
	for {
		if ctx.Err() != nil {
			return
		}
		if !r.keepPolling(ref) {
			logger.V(4).Info("No pod waits on the NEG any more; stopped polling")
			return
		}
		at := r.cfg.Clock.Now()
		eps, err := r.cfg.Cloud.ListNetworkEndpoints(ctx, ref.Zone, ref.Name, true)
		delay := r.cfg.PollInterval
		if err != nil {
			backoff = min(max(backoff*2, r.cfg.ErrorBackoff), r.cfg.MaxErrorBackoff)
			delay = backoff
			if ctx.Err() == nil {
				logger.Error(err, "Listing NEG endpoint health failed; backing off", "retryIn", delay)
			}
		} else {
			backoff = 0
			r.mu.Lock()
			r.listings[ref] = newListing(at, eps)
			var pods []cache.ObjectName
			for k := range r.waiting[ref] {
				pods = append(pods, k)
			}
			r.mu.Unlock()
			for _, k := range pods {
				r.queue.Add(k)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.cfg.Clock.After(delay):
		}
	}
}
