package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/dedup"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/keyqueue"
	"github.com/neg-controller/neg-controller/pkg/metrics"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/pkg/negsync"
	"github.com/neg-controller/neg-controller/pkg/plan"
	"github.com/neg-controller/neg-controller/pkg/wanted"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// QueueName is the name of the Service work queue (workqueue metrics use it).
const QueueName = "neg-controller"

// Defaults for the zero values of Config.
const (
	DefaultConcurrentSyncs = 10
	DefaultGCPeriod        = 2 * time.Minute
	DefaultGCInitialDelay  = 10 * time.Second
	DefaultResyncPeriod    = 10 * time.Minute
	DefaultNEGVerifyPeriod = time.Hour
	DefaultSyncDelay       = 0
	DefaultCallInterval    = negsync.DefaultCallInterval
	DefaultInvalidRetry    = negsync.DefaultInvalidRetry
)

// Config is everything New needs. Library code gets plain values here, never flags.
type Config struct {
	// KubeClient patches Services (neg-status). Required.
	KubeClient kubernetes.Interface
	// EventClient records events; a separate client so events never use the sync budget.
	// Defaults to KubeClient.
	EventClient kubernetes.Interface
	// Informers is the shared informer factory New registers its informers with; the caller
	// starts it (before or after Run).
	Informers informers.SharedInformerFactory
	// Cloud is the Compute Engine adapter. Required.
	Cloud gce.Cloud

	// ClusterUID is the metadata.uid of the kube-system Namespace, written as "cluster-uid" in
	// NEG descriptions and used to recognize our NEGs. Required.
	ClusterUID string
	// NamingUID is the cluster naming UID (ConfigMap kube-system/ingress-uid, key uid) that
	// generated NEG names embed. Required.
	NamingUID string
	// Network and Subnetwork are set on every NEG created (URL or partial URL). Network empty
	// means the project's default network. A NEG on another network is never ours.
	Network    string
	Subnetwork string
	// RequireNamespacePrefix refuses custom NEG names that do not start with
	// "<namespace>-", for clusters shared by teams.
	RequireNamespacePrefix bool

	// ConcurrentSyncs is the number of Services synced at once.
	ConcurrentSyncs int
	// GCPeriod is how often NEGs no Service wants are looked for; GCInitialDelay is the delay
	// of the first pass after the caches synced.
	GCPeriod       time.Duration
	GCInitialDelay time.Duration
	// ResyncPeriod is how often the ServiceNetworkEndpointGroups and the backend services a
	// Service uses are read again to repair changes made outside the controller.
	ResyncPeriod time.Duration
	// NEGVerifyPeriod is how old a NEG's known endpoint set may get before a sync lists the NEG
	// in full again (see verifyDue). Changes made outside the controller that change a NEG's
	// endpoint count are found sooner, every GCPeriod, from the NEG listing's sizes (drift.go);
	// the full listing is for those that do not (an endpoint swapped for another).
	NEGVerifyPeriod time.Duration
	// SyncDelay delays the sync a slice or node change causes (0, the default: at once). Calls
	// are coalesced per NEG while one is in flight (pkg/negsync), so a delay only trades
	// propagation latency for fewer syncs.
	SyncDelay time.Duration
	// CallInterval paces attach (and detach) calls on one NEG: one per interval sustained, a
	// burst of two (calls of one plan count once); see plan.Hold.
	CallInterval time.Duration
	// QuietPeriod lets a NEG's pending changes out ahead of the pacer once they stopped
	// changing for that long (unless BudgetShort); default plan.DefaultQuiet.
	QuietPeriod time.Duration
	// BudgetShort reports whether mutating GCE calls already wait for the shared budget (see
	// gce.Compute.MutationsShort), which makes the pacing strict; nil means never.
	BudgetShort func() bool
	// Backoff is the retry policy for failed syncs and calls.
	Backoff backoff.Policy
	// InvalidEndpointRetry is how long an endpoint GCE rejected as invalid is left out.
	InvalidEndpointRetry time.Duration
	// BatchSize and MaxEndpointsPerNEG default to GCE's limits (500, 10000).
	BatchSize          int
	MaxEndpointsPerNEG int

	// DualStackNEG gives dual-stack Services (spec.ipFamilies IPv4 and IPv6) endpoints with
	// both addresses; IPv6OnlyNEG gives IPv6-only Services IPv6 endpoints (else they get a
	// Warning and empty NEGs). Hybrid NEGs always take IPv4 endpoints. See endpoints.StackOf.
	DualStackNEG bool
	IPv6OnlyNEG  bool
	// MigrationPause is the pause between the steps of a NEG's single ↔ dual-stack migration
	// (negsync.Config.MigrationPause; 0: its default).
	MigrationPause time.Duration

	// Clock drives timers and backoff; default the real clock.
	Clock clock.WithTicker

	// SvcNEG writes a ServiceNetworkEndpointGroup per NEG name (svcneg.Writer, see svcneg.go);
	// nil writes none.
	SvcNEG SvcNEGWriter

	// Metrics records the controller's metrics (see metrics.go); nil records nothing.
	Metrics *metrics.Metrics

	// NewBackends builds the backend service reconciler (controller.autoneg.dev/neg, see
	// backends.go; pkg/app builds a backends.Reconciler); nil disables backend service wiring.
	// New calls it once, after the queue and the event recorder exist. It is a factory rather
	// than a built value because the two call each other: the reconciler's events go to the
	// controller's warning memory and its releases to the controller's queue (BackendHooks),
	// while the controller hands it the wanted backends. The caller configures everything else
	// (cloud, allow-list, region, retries, resync), usually as for the controller.
	NewBackends func(BackendHooks) (BackendServices, error)

	// Hybrid configures hybrid (NON_GCP_PRIVATE_IP_PORT) NEGs: which Services get them, the
	// placement of their nodes in GCE zones, the takeover from k8s-hybrid-neg-controller
	// (hybrid.go).
	Hybrid HybridConfig

	// Preprovisioning configures NEG zone pre-provisioning, the "zones" field of the annotation
	// (preprovision.go).
	Preprovisioning PreprovisionConfig
}

func (cfg Config) withDefaults() Config {
	if cfg.EventClient == nil {
		cfg.EventClient = cfg.KubeClient
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.ConcurrentSyncs <= 0 {
		cfg.ConcurrentSyncs = DefaultConcurrentSyncs
	}
	def(&cfg.GCPeriod, DefaultGCPeriod)
	def(&cfg.GCInitialDelay, DefaultGCInitialDelay)
	def(&cfg.ResyncPeriod, DefaultResyncPeriod)
	def(&cfg.NEGVerifyPeriod, DefaultNEGVerifyPeriod)
	cfg.SyncDelay = max(cfg.SyncDelay, 0)
	def(&cfg.CallInterval, DefaultCallInterval)
	def(&cfg.InvalidEndpointRetry, DefaultInvalidRetry)
	cfg.Backoff = cfg.Backoff.WithDefaults()
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = plan.DefaultBatchSize
	}
	if cfg.MaxEndpointsPerNEG <= 0 {
		cfg.MaxEndpointsPerNEG = plan.DefaultCapacity
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return cfg
}

func (cfg Config) validate() error {
	var errs []error
	if cfg.KubeClient == nil {
		errs = append(errs, errors.New("a Kubernetes client (KubeClient) is required"))
	}
	if cfg.Informers == nil {
		errs = append(errs, errors.New("an informer factory (Informers) is required"))
	}
	if cfg.Cloud == nil {
		errs = append(errs, errors.New("a GCE adapter (Cloud) is required"))
	}
	if cfg.ClusterUID == "" {
		errs = append(errs, errors.New("the cluster UID (ClusterUID) is required"))
	}
	if cfg.NamingUID == "" {
		errs = append(errs, errors.New("the naming UID (NamingUID) is required"))
	}
	if cfg.Preprovisioning.Enabled && cfg.Preprovisioning.RegionZones == nil {
		errs = append(errs, errors.New("NEG zone pre-provisioning needs a zone lister (Preprovisioning.RegionZones)"))
	}
	return errors.Join(errs...)
}

// Controller keeps the NEGs of annotated Services in sync. Create it with New, run it with Run.
type Controller struct {
	cfg   Config
	clock clock.WithTicker
	namer naming.Namer

	services    corelisters.ServiceLister
	svcIndexer  cache.Indexer
	slices      cache.Indexer // EndpointSlices, with sliceServiceIndex
	nodes       corelisters.NodeLister
	ingresses   networkinglisters.IngressLister
	cacheSynced []cache.InformerSynced

	queue      *keyqueue.Queue
	keyBackoff *backoff.Keyed

	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	warnings    *dedup.Warnings

	// index knows every NEG of the project and which are ours (pkg/negindex).
	index *negindex.Index
	// wants says which NEGs a Service asks for and may have (pkg/wanted).
	wants *wanted.Resolver
	// negs owns the endpoints of every NEG (pkg/negsync).
	negs *negsync.Syncer
	// creates tracks the NEG inserts in flight (create.go).
	creates *creations
	// changes times EndpointSlice changes until the calls they cause complete (metrics).
	changes *metrics.Changes
	// backends keeps backend services in step with the NEGs (backends.go); nil when disabled.
	backends BackendServices
	// regionZones are the zones of the region, for zone pre-provisioning (preprovision.go).
	regionZones regionZoneList
	// placements caches the node placement syncs use until the nodes change (loadNodes, onNode).
	placements zones.PlacementCache

	// ops tracks the NEG inserts running in the background, and busy counts them (see idle).
	ops  sync.WaitGroup
	busy atomic.Int64

	// unclaimed counts, as of the last GC pass, custom-named NEGs of ours no Service claims;
	// unownedLogged remembers the NEGs already logged as not ours (see reportUnowned).
	unclaimed     atomic.Int64
	unownedMu     sync.Mutex
	unownedLogged map[neg.Ref]bool
}

// idle reports whether the controller has nothing to do within horizon: no key queued or due
// for a delayed sync, no sync running, no NEG insert and no endpoint call in flight. Tests use
// it as a quiescence barrier before asserting that something did not happen.
func (c *Controller) idle(horizon time.Duration) bool {
	return c.busy.Load() == 0 && c.negs.Idle() && c.queue.Idle(horizon) && (c.backends == nil || c.backends.Idle(horizon))
}

// New builds a Controller and registers its event handlers on cfg.Informers. It makes no
// API calls.
func New(cfg Config) (*Controller, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("controller: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	c := &Controller{
		cfg:      cfg,
		clock:    cfg.Clock,
		namer:    naming.NewNamer(cfg.NamingUID),
		warnings: dedup.NewWarnings(),
		index: negindex.New(negindex.Rule{ClusterUID: cfg.ClusterUID, Network: cfg.Network, Namer: naming.NewNamer(cfg.NamingUID),
			AdoptHybrid: cfg.Hybrid.AdoptHybridControllerNEGs}),
		creates: newCreations(maxCreatesInFlight),
		changes: metrics.NewChanges(),

		unownedLogged: map[neg.Ref]bool{},
	}
	negs, err := negsync.New(negsync.Config{Cloud: cfg.Cloud, Clock: cfg.Clock, Backoff: cfg.Backoff,
		CallInterval: cfg.CallInterval, Quiet: cfg.QuietPeriod, BudgetShort: cfg.BudgetShort, VerifyPeriod: cfg.NEGVerifyPeriod,
		InvalidEndpointRetry: cfg.InvalidEndpointRetry, BatchSize: cfg.BatchSize, Capacity: cfg.MaxEndpointsPerNEG,
		MigrationPause: cfg.MigrationPause, OnDone: c.callsDone})
	if err != nil {
		return nil, err
	}
	c.negs = negs
	c.keyBackoff = backoff.NewKeyed(cfg.Backoff)
	c.queue = keyqueue.New(keyqueue.Config{Name: QueueName, Workers: cfg.ConcurrentSyncs, Sync: c.syncKey,
		LogKey: "service", RateLimiter: c.keyBackoff, Clock: cfg.Clock, MetricsProvider: cfg.Metrics.QueueProvider()})
	cfg.Metrics.SetAttachedEndpointsSource(c.attachedCounts)
	cfg.Metrics.SetUnownedNEGsSource(c.unownedCounts)
	c.broadcaster = record.NewBroadcaster()
	c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: EventSource})
	if err := c.registerHandlers(cfg.Informers); err != nil {
		return nil, err
	}
	c.wants = &wanted.Resolver{Namer: c.namer, NonGCPMode: cfg.Hybrid.NonGCPMode,
		AdoptHybridControllerNEGs: cfg.Hybrid.AdoptHybridControllerNEGs, IPv6Only: cfg.IPv6OnlyNEG,
		RequireNamespacePrefix: cfg.RequireNamespacePrefix, Ingresses: c.ingresses, Claims: c.svcIndexer, Index: c.index}
	if err := c.initBackends(); err != nil {
		return nil, err
	}
	return c, nil
}

// Run waits for the caches, loads the NEG index from GCE, then syncs Services with
// ConcurrentSyncs workers and collects garbage every GCPeriod, until ctx is done. It returns
// after the workers and every call in flight have stopped.
func (c *Controller) Run(ctx context.Context) error {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx)
	c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.cfg.EventClient.CoreV1().Events("")})
	defer c.broadcaster.Shutdown()
	defer c.queue.ShutDown()

	logger.Info("Waiting for informer caches to sync")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.cacheSynced...) {
		return fmt.Errorf("controller: caches did not sync: %w", ctx.Err())
	}
	c.changes.Arm()
	if err := c.loadIndex(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	if c.cfg.Preprovisioning.Enabled {
		// Listed before the first sync, so that "zones" fields resolve at once when GCE answers.
		first := c.refreshRegionZones(ctx)
		wg.Go(func() { c.runRegionZones(ctx, first) })
	}
	logger.Info("Starting workers", "count", c.cfg.ConcurrentSyncs)
	wg.Go(func() { c.queue.Run(ctx) })
	wg.Go(func() { c.runGC(ctx) })
	wg.Go(func() { c.runBackends(ctx) })
	<-ctx.Done()
	logger.Info("Shutting down")
	c.queue.ShutDown()
	wg.Wait()
	c.ops.Wait()
	c.negs.Wait()
	return nil
}

// loadIndex lists every NEG of the project once before the first sync, retrying until it
// succeeds, so that NEGs already present are neither created again nor forgotten.
func (c *Controller) loadIndex(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	for failures := 1; ; failures++ {
		err := c.refreshIndex(ctx)
		if err == nil {
			return nil
		}
		delay := backoff.Jitter(c.cfg.Backoff.ErrorDelay(failures, err))
		logger.Error(err, "Listing NEGs failed; retrying", "delay", delay)
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller: loading NEGs: %w", ctx.Err())
		case <-c.clock.After(delay):
		}
	}
}

// refreshIndex replaces the NEG index with a fresh listing, and compares the listed sizes with
// the endpoints the controller believes attached (drift.go).
func (c *Controller) refreshIndex(ctx context.Context) error {
	gen, seq := c.index.Generation(), c.negs.Sequence()
	negs, err := c.cfg.Cloud.ListNEGs(gce.WithPriority(ctx, gce.PriorityBackground))
	if err != nil {
		return fmt.Errorf("listing NEGs: %w", err)
	}
	c.repairDrift(ctx, c.negs.CheckSizes(negs, seq))
	for _, key := range c.index.Refresh(negs, gen) {
		// A NEG of this Service was deleted outside the controller: re-create it.
		klog.FromContext(ctx).Info("NEG deleted outside the controller", "service", klog.KRef(key.Namespace, key.Name))
		c.queue.Add(key)
	}
	klog.FromContext(ctx).V(2).Info("Loaded NEG index", "negs", len(negs))
	return nil
}

// syncKey syncs one Service for the queue. Failures of single NEGs are retried per NEG (pkg/negsync);
// what it returns as an error are Kubernetes API and cache errors, retried with the per-key
// backoff (never given up: the delay is capped at Backoff.Max).
func (c *Controller) syncKey(ctx context.Context, key cache.ObjectName) keyqueue.Result {
	start := c.clock.Now()
	c.changes.Begin(key)
	requeueAfter, err := c.sync(ctx, key)
	c.changes.End(key, err != nil)
	c.observeSync(err, c.clock.Since(start))
	logger := klog.FromContext(ctx)
	logger.V(4).Info("Synced", "duration", c.clock.Since(start), "requeueAfter", requeueAfter, "err", err)
	if err != nil && ctx.Err() == nil {
		logger.Error(err, "Sync failed; retrying", "failures", c.queue.NumRequeues(key)+1)
	}
	return keyqueue.Result{Err: err, RequeueAfter: requeueAfter}
}
