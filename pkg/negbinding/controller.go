package negbinding

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/dedup"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/keyqueue"
	"github.com/neg-controller/neg-controller/pkg/negsync"
)

// QueueName names the controller's work queue (and its metrics).
const QueueName = "negbinding"

// EventSource is the component of the events on bindings (the NEG controller's).
const EventSource = "neg-controller"

// Defaults of Config.
const (
	DefaultCleanupTimeout = 5 * time.Minute
	DefaultResyncPeriod   = 10 * time.Minute
	DefaultWorkers        = 4
	DefaultDiscoveryPoll  = 30 * time.Second
	DefaultSyncDelay      = 100 * time.Millisecond
	DefaultMissingRecheck = time.Minute
)

// Config is everything New needs.
type Config struct {
	// Dynamic reads the bindings (informer) and Client writes them; Client also tells whether
	// the CRD is installed. Both required.
	Dynamic dynamic.Interface
	Client  *Client
	// KubeClient is the main client; EventClient records events (defaults to KubeClient).
	KubeClient, EventClient kubernetes.Interface
	// Informers provides Services, EndpointSlices and Nodes. New registers its handlers and
	// indexers; the caller starts the factory.
	Informers informers.SharedInformerFactory
	// Cloud makes the GCE calls: GetNEG to judge a NEG, the endpoint calls through a
	// negsync.Syncer of the controller's own. Required.
	Cloud gce.Cloud

	// ClusterUID is the kube-system Namespace UID (annotation-driven NEG descriptions name it);
	// ClusterName the cluster's name ("" if unknown). Network and Subnetwork are the cluster's
	// (URL, partial URL or bare name; "" = not checked).
	ClusterUID, ClusterName string
	Network, Subnetwork     string
	// Allow restricts the NEG names per namespace (the zero value allows all).
	Allow AllowList

	// CleanupTimeout bounds how long a deleted binding waits for its endpoints to be detached
	// before its finalizer is removed anyway (DefaultCleanupTimeout).
	CleanupTimeout time.Duration
	// ResyncPeriod re-syncs every binding and re-reads its NEGs from GCE (DefaultResyncPeriod).
	ResyncPeriod time.Duration
	// MissingRecheck is how long GCE's "this NEG does not exist" is believed: a binding naming a
	// missing NEG reads it again after that long (DefaultMissingRecheck).
	MissingRecheck time.Duration
	// NEGVerifyPeriod, CallInterval, Quiet, BudgetShort and Backoff configure the Syncer of the
	// bound NEGs (negsync.Config).
	NEGVerifyPeriod, CallInterval, Quiet time.Duration
	BudgetShort                          func() bool
	Backoff                              backoff.Policy
	// DualStackNEG and IPv6OnlyNEG choose the address families of the bound NEGs' endpoints
	// from the Service's (endpoints.StackOf); MigrationPause paces single ↔ dual-stack
	// migrations (negsync.Config).
	DualStackNEG, IPv6OnlyNEG bool
	MigrationPause            time.Duration
	// SyncDelay coalesces EndpointSlice and node changes (DefaultSyncDelay).
	SyncDelay time.Duration
	// Workers is the number of bindings synced at once (DefaultWorkers).
	Workers int
	// DiscoveryPoll is how often the CRD is looked for until it is installed.
	DiscoveryPoll time.Duration
	// Clock drives deadlines and the queue (real clock when nil).
	Clock clock.WithTicker
	// QueueMetrics provides the work queue's metrics (client-go's global provider when nil).
	QueueMetrics workqueue.MetricsProvider
	// OnBoundChange, when set, is told about Services whose bound NEGs may have changed
	// (readiness gates re-check their pods).
	OnBoundChange func(namespace, service string)
}

func (c *Config) defaults() {
	if c.EventClient == nil {
		c.EventClient = c.KubeClient
	}
	if c.CleanupTimeout <= 0 {
		c.CleanupTimeout = DefaultCleanupTimeout
	}
	if c.ResyncPeriod <= 0 {
		c.ResyncPeriod = DefaultResyncPeriod
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MissingRecheck <= 0 {
		c.MissingRecheck = DefaultMissingRecheck
	}
	if c.DiscoveryPoll <= 0 {
		c.DiscoveryPoll = DefaultDiscoveryPoll
	}
	if c.SyncDelay < 0 {
		c.SyncDelay = 0
	} else if c.SyncDelay == 0 {
		c.SyncDelay = DefaultSyncDelay
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	c.Backoff = c.Backoff.WithDefaults()
}

// Controller keeps the endpoints of the NEGs named by NetworkEndpointGroupBindings in step with
// their Services (see the package documentation). Create it with New, run it with Run.
type Controller struct {
	cfg   Config
	clock clock.WithTicker
	env   env

	services   corelisters.ServiceLister
	svcIndexer cache.Indexer // with customNameIndex
	slices     discoverylisters.EndpointSliceLister
	nodes      corelisters.NodeLister
	synced     []cache.InformerSynced

	// bindings is the informer of the CRD, created once it is installed (Run).
	bindingsMu sync.RWMutex
	bindings   cache.SharedIndexInformer
	started    chan struct{} // closed once bindings is set

	queue  *keyqueue.Queue
	syncer *negsync.Syncer
	negs   *negCache
	claims *claims

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	warnings    *dedup.Warnings

	mu sync.Mutex
	// changed holds the bindings whose calls finished since their status was last written:
	// their next status write sets lastSyncTime.
	changed map[cache.ObjectName]bool
	// deletingSince holds when this process first saw each binding being deleted.
	deletingSince map[cache.ObjectName]time.Time
}

// New creates a Controller and registers its informer handlers and indexers.
func New(cfg Config) (*Controller, error) {
	cfg.defaults()
	if cfg.Dynamic == nil || cfg.Client == nil || cfg.KubeClient == nil || cfg.Informers == nil || cfg.Cloud == nil {
		return nil, errors.New("negbinding: Dynamic, Client, KubeClient, Informers and Cloud are required")
	}
	svcInf := cfg.Informers.Core().V1().Services()
	sliceInf := cfg.Informers.Discovery().V1().EndpointSlices()
	nodeInf := cfg.Informers.Core().V1().Nodes()
	c := &Controller{
		cfg:   cfg,
		clock: cfg.Clock,
		env: env{clusterUID: cfg.ClusterUID, clusterName: cfg.ClusterName, network: cfg.Network,
			subnetwork: cfg.Subnetwork},
		services:      svcInf.Lister(),
		svcIndexer:    svcInf.Informer().GetIndexer(),
		slices:        sliceInf.Lister(),
		nodes:         nodeInf.Lister(),
		synced:        []cache.InformerSynced{svcInf.Informer().HasSynced, sliceInf.Informer().HasSynced, nodeInf.Informer().HasSynced},
		negs:          newNEGCache(cfg.Cloud, cfg.Clock, cfg.ResyncPeriod*9/10, cfg.MissingRecheck),
		claims:        newClaims(),
		warnings:      dedup.NewWarnings(),
		changed:       map[cache.ObjectName]bool{},
		deletingSince: map[cache.ObjectName]time.Time{},
		started:       make(chan struct{}),
	}
	syncer, err := negsync.New(negsync.Config{Cloud: cfg.Cloud, Clock: cfg.Clock, Backoff: cfg.Backoff,
		CallInterval: cfg.CallInterval, Quiet: cfg.Quiet, BudgetShort: cfg.BudgetShort,
		VerifyPeriod: cfg.NEGVerifyPeriod, MigrationPause: cfg.MigrationPause, OnDone: c.callsDone})
	if err != nil {
		return nil, err
	}
	c.syncer = syncer
	c.negs.syncer = syncer
	c.queue = keyqueue.New(keyqueue.Config{Name: QueueName, Workers: cfg.Workers, LogKey: "negbinding",
		Clock: cfg.Clock, MetricsProvider: cfg.QueueMetrics, Sync: c.syncKey,
		RateLimiter: workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](cfg.Backoff.Base, cfg.Backoff.Max),
			&workqueue.TypedBucketRateLimiter[cache.ObjectName]{Limiter: defaultBucket()})})
	c.broadcaster = record.NewBroadcaster()
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventSource})

	if err := svcInf.Informer().AddIndexers(cache.Indexers{customNameIndex: customNEGNames}); err != nil {
		return nil, fmt.Errorf("negbinding: Service indexer: %w", err)
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{svcInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.onService,
			UpdateFunc: func(old, obj any) { c.onService(old); c.onService(obj) }, DeleteFunc: c.onService}},
		{sliceInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.onSlice,
			UpdateFunc: func(_, obj any) { c.onSlice(obj) }, DeleteFunc: c.onSlice}},
		{nodeInf.Informer(), cache.ResourceEventHandlerFuncs{AddFunc: c.onNode,
			UpdateFunc: c.onNodeUpdate, DeleteFunc: c.onNode}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Start looks for the CRD (every DiscoveryPoll until it is installed) and then runs the binding
// informer until ctx is done, in the background. Every replica starts it (the readiness gate
// webhook, served by all, reads bound NEGs); only the leader runs Run.
func (c *Controller) Start(ctx context.Context) {
	logger := klog.FromContext(ctx).WithName("negbinding")
	ctx = klog.NewContext(ctx, logger)
	go func() {
		defer utilruntime.HandleCrash()
		if err := c.waitForCRD(ctx); err != nil {
			return
		}
		if err := c.startInformer(ctx); err != nil {
			logger.Error(err, "Starting the NetworkEndpointGroupBinding informer failed; bindings are not served")
		}
	}()
}

// Run syncs bindings until ctx is done, once Start has found the CRD and the caches synced. It
// returns once the workers and every GCE call have finished.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx).WithName("negbinding")
	ctx = klog.NewContext(ctx, logger)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.cfg.EventClient.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	defer c.queue.ShutDown()
	select {
	case <-ctx.Done():
		return nil
	case <-c.started:
	}
	if !cache.WaitForNamedCacheSyncWithContext(ctx, append([]cache.InformerSynced{c.informer().HasSynced}, c.synced...)...) {
		return nil
	}
	logger.Info("Starting the NetworkEndpointGroupBinding controller", "workers", c.cfg.Workers,
		"allow", c.cfg.Allow.String(), "cleanupTimeout", c.cfg.CleanupTimeout)
	c.enqueueAll()
	c.queue.Run(ctx)
	c.syncer.Wait()
	return nil
}

// waitForCRD returns once the CRD is served, or ctx's error.
func (c *Controller) waitForCRD(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	for warned := false; ; warned = true {
		ok, err := c.cfg.Client.Installed()
		switch {
		case err != nil:
			logger.Error(err, "Looking for the NetworkEndpointGroupBinding CRD failed; will retry", "retryIn", c.cfg.DiscoveryPoll)
		case ok:
			return nil
		case !warned:
			logger.Info("The NetworkEndpointGroupBinding CRD is not installed (manifests/components/negbinding); "+
				"bindings are served once it is", "crd", CRDName, "checkEvery", c.cfg.DiscoveryPoll)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.clock.After(c.cfg.DiscoveryPoll):
		}
	}
}

// startInformer creates and runs the binding informer: typed bindings in its cache, indexed
// by namespace, by the NEGs of their spec and status and by their Service.
func (c *Controller) startInformer(ctx context.Context) error {
	inf := dynamicinformer.NewFilteredDynamicInformer(c.cfg.Dynamic, GroupVersionResource, "", c.cfg.ResyncPeriod,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc, negNameIndex: indexNEGNames, serviceIndex: indexService},
		nil).Informer()
	if err := inf.SetTransform(toTyped); err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.onBinding,
		UpdateFunc: func(old, obj any) { c.onBinding(old); c.onBinding(obj) },
		DeleteFunc: c.onBinding,
	}); err != nil {
		return err
	}
	c.bindingsMu.Lock()
	c.bindings = inf
	c.bindingsMu.Unlock()
	close(c.started)
	go inf.RunWithContext(ctx)
	return nil
}

// toTyped is the binding informer's transform: the cache holds *NetworkEndpointGroupBinding.
func toTyped(obj any) (any, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		return FromUnstructured(o)
	case cache.DeletedFinalStateUnknown:
		if u, ok := o.Obj.(*unstructured.Unstructured); ok {
			b, err := FromUnstructured(u)
			if err != nil {
				return nil, err
			}
			o.Obj = b
		}
		return o, nil
	}
	return obj, nil
}

// informer returns the binding informer, nil until the CRD is installed.
func (c *Controller) informer() cache.SharedIndexInformer {
	c.bindingsMu.RLock()
	defer c.bindingsMu.RUnlock()
	return c.bindings
}

// binding returns a binding from the cache (nil if absent or before the informer runs).
func (c *Controller) binding(key cache.ObjectName) *NetworkEndpointGroupBinding {
	inf := c.informer()
	if inf == nil {
		return nil
	}
	o, ok, err := inf.GetIndexer().GetByKey(key.String())
	if err != nil || !ok {
		return nil
	}
	b, _ := o.(*NetworkEndpointGroupBinding)
	return b
}

// byIndex returns the cached bindings under an index value.
func (c *Controller) byIndex(index, value string) []*NetworkEndpointGroupBinding {
	inf := c.informer()
	if inf == nil {
		return nil
	}
	objs, err := inf.GetIndexer().ByIndex(index, value)
	if err != nil {
		return nil
	}
	out := make([]*NetworkEndpointGroupBinding, 0, len(objs))
	for _, o := range objs {
		if b, ok := o.(*NetworkEndpointGroupBinding); ok {
			out = append(out, b)
		}
	}
	return out
}

// HasSynced reports whether the binding informer runs and every cache has synced.
func (c *Controller) HasSynced() bool {
	inf := c.informer()
	if inf == nil || !inf.HasSynced() {
		return false
	}
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Idle reports whether nothing is queued, running or due within horizon and no GCE call is in
// flight: the quiescence barrier of tests.
func (c *Controller) Idle(horizon time.Duration) bool {
	return c.queue.Idle(horizon) && c.syncer.Idle()
}

// syncKey runs one sync of a binding for the queue.
func (c *Controller) syncKey(ctx context.Context, key cache.ObjectName) keyqueue.Result {
	after, err := c.sync(ctx, key)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Syncing the NetworkEndpointGroupBinding failed; will retry")
	}
	return keyqueue.Result{Err: err, RequeueAfter: after}
}
