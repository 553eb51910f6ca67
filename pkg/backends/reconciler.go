package backends

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/keyqueue"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// QueueName is the name of the reconciler's work queue.
const QueueName = "neg-controller-backends"

// Defaults for the zero values of Config.
const (
	DefaultWorkers         = 2
	DefaultResyncPeriod    = 10 * time.Minute
	DefaultConflictRetries = 5
	DefaultConflictDelay   = 200 * time.Millisecond
	DefaultRetryBase       = time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultRetryLater      = time.Minute
)

// Event reasons recorded on Services.
const (
	// ReasonBackendsUpdated: the backends of a backend service were changed (Normal).
	ReasonBackendsUpdated = "BackendsUpdated"
	// ReasonInvalidAutoneg: the controller.autoneg.dev/neg annotation is invalid; nothing is done.
	ReasonInvalidAutoneg = annotation.ReasonInvalidAutoneg
	// ReasonPortWithoutNEG: a port of the annotation has no NEG (not in cloud.google.com/neg).
	ReasonPortWithoutNEG = "AutonegPortWithoutNEG"
	// ReasonNotAllowed: the backend service is outside the allow-list; it is not touched.
	ReasonNotAllowed = "BackendServiceNotAllowed"
	// ReasonWrongRegion: a regional backend service outside the cluster's region.
	ReasonWrongRegion = "BackendServiceWrongRegion"
	// ReasonNotFound: the backend service does not exist.
	ReasonNotFound = "BackendServiceNotFound"
	// ReasonInvalidConfig: the backends cannot be written as asked (balancing mode the protocol
	// does not take, too many backends, GCE refused them); nothing is written.
	ReasonInvalidConfig = "InvalidBackendServiceConfig"
	// ReasonUpdateFailed: reading or updating a backend service failed; retried.
	ReasonUpdateFailed = "BackendServiceUpdateFailed"
	// ReasonStatusFailed: the controller.autoneg.dev/neg-status annotation could not be written.
	ReasonStatusFailed = "AutonegStatusUpdateFailed"
)

// Events records events about Services; the NEG controller implements it with its recorder
// and its memory of warnings (a warning is not repeated while its message stays the same).
type Events interface {
	// Warn records a Warning event unless the last one of (key, slot) had the same message.
	Warn(key cache.ObjectName, target *corev1.Service, slot, reason, msg string)
	// Clear forgets the last warning of (key, slot).
	Clear(key cache.ObjectName, slot string)
	// Normal records a Normal event.
	Normal(target *corev1.Service, reason, msg string)
}

// Config configures a Reconciler. Library code gets plain values here, never flags.
type Config struct {
	// KubeClient patches the controller.autoneg.dev/neg-status annotation. Required.
	KubeClient kubernetes.Interface
	// Cloud reads and updates backend services. Required.
	Cloud gce.BackendServices
	// Project holds the NEGs (their backend URLs are built from it). Required.
	Project string
	// Region is the cluster's region: a regional backend service elsewhere cannot take its NEGs.
	Region string
	// Allow lists the backend services that may be modified; the zero value allows none.
	Allow AllowList
	// Events records events. Required.
	Events Events
	// OnReleased is called with a Service after a reconcile that leaves some of its NEGs out of
	// every backend service (the NEG controller may then delete them). Optional.
	OnReleased func(key cache.ObjectName)

	// Workers is the number of Services reconciled at once.
	Workers int
	// ResyncPeriod is how often an unchanged Service's backend services are read again to repair
	// changes made outside the controller (each Service verifies after 80–100% of it).
	ResyncPeriod time.Duration
	// ConflictRetries bounds the attempts of one backend service update that fails with 412;
	// ConflictDelay is the first (jittered, doubling) delay between them.
	ConflictRetries int
	ConflictDelay   time.Duration
	// RetryBase and RetryMax bound the per-Service exponential backoff after failures;
	// RetryLater is the delay after errors only a change elsewhere fixes (missing backend service).
	RetryBase, RetryMax, RetryLater time.Duration
	// Clock drives delays; default the real clock.
	Clock clock.WithTicker
	// QueueMetrics provides the work queue's metrics (client-go's default when nil).
	QueueMetrics workqueue.MetricsProvider
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.ConflictRetries <= 0 {
		c.ConflictRetries = DefaultConflictRetries
	}
	def(&c.ResyncPeriod, DefaultResyncPeriod)
	def(&c.ConflictDelay, DefaultConflictDelay)
	def(&c.RetryBase, DefaultRetryBase)
	def(&c.RetryMax, DefaultRetryMax)
	def(&c.RetryLater, DefaultRetryLater)
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// Want is what the NEG controller knows about one Service after a sync.
type Want struct {
	Key cache.ObjectName
	// Service is the Service as cached (nil when it was deleted); read-only.
	Service *corev1.Service
	// Target is the object events are recorded on.
	Target *corev1.Service
	// NEGs maps each port the Service has NEGs for to the NEG name and the zones where the NEG
	// exists and is ours.
	NEGs map[int32]PortNEGs
	// Owned are the NEGs of this cluster whose description names the Service, including those
	// about to be deleted.
	Owned []neg.Ref
}

// PortNEGs are the NEGs of one Service port.
type PortNEGs struct {
	Name  string
	Zones []string
}

// Reconciler keeps the backend services named by Services' autoneg annotations in step with
// their NEGs. Create it with NewReconciler, feed it with Update, run it with Run.
type Reconciler struct {
	cfg   Config
	clock clock.WithTicker
	queue *keyqueue.Queue

	mu     sync.Mutex
	states map[cache.ObjectName]*svcState
}

// svcState is what the reconciler knows about one Service.
type svcState struct {
	want        Want
	digest      string
	verifiedAt  time.Time
	verifyEvery time.Duration
	// tracked are the backend services that may hold NEGs of the Service.
	tracked map[bsKey]*bsState
	// running holds the resource paths of the NEGs the reconcile in progress may add.
	running map[string]bool
	// status is the last status annotation value written ("" when none or removed): a removal
	// is sent even when the cached Service does not show our last write yet.
	status string
}

// bsKey names a backend service: region "" is global.
type bsKey struct{ region, name string }

func (k bsKey) String() string {
	if k.region == "" {
		return k.name
	}
	return k.region + "/" + k.name
}

// describe renders the backend service for messages: "my-bs" (global) or "my-bs" (region r).
func (k bsKey) describe() string {
	if k.region == "" {
		return fmt.Sprintf("%q (global)", k.name)
	}
	return fmt.Sprintf("%q (region %s)", k.name, k.region)
}

// bsState is what the reconciler knows about one tracked backend service.
type bsState struct {
	// known is true once the backend service was read (or written) since it was tracked;
	// present then holds the resource paths of the Service's NEGs among its backends.
	known   bool
	present map[string]bool
	// synced is true when the last reconcile left it exactly as the annotation asks.
	synced bool
}

// NewReconciler builds a Reconciler. It makes no API calls.
func NewReconciler(cfg Config) (*Reconciler, error) {
	var errs []error
	if cfg.KubeClient == nil {
		errs = append(errs, errors.New("a Kubernetes client (KubeClient) is required"))
	}
	if cfg.Cloud == nil {
		errs = append(errs, errors.New("a backend services adapter (Cloud) is required"))
	}
	if cfg.Project == "" {
		errs = append(errs, errors.New("the project (Project) is required"))
	}
	if cfg.Events == nil {
		errs = append(errs, errors.New("an event recorder (Events) is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("backends: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	r := &Reconciler{
		cfg:    cfg,
		clock:  cfg.Clock,
		states: map[cache.ObjectName]*svcState{},
	}
	r.queue = r.newQueue()
	return r, nil
}

// Idle reports whether nothing is queued, no reconcile is running and none is due within
// horizon: a quiescence barrier before asserting that something did not happen.
func (r *Reconciler) Idle(horizon time.Duration) bool { return r.queue.Idle(horizon) }

// newQueue returns the reconciler's work queue: retryLater waits RetryLater, other failures back
// off exponentially from RetryBase to RetryMax.
func (r *Reconciler) newQueue() *keyqueue.Queue {
	return keyqueue.New(keyqueue.Config{Name: QueueName, Workers: r.cfg.Workers, LogKey: "service", Clock: r.cfg.Clock,
		MetricsProvider: r.cfg.QueueMetrics,
		RateLimiter:     workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](r.cfg.RetryBase, r.cfg.RetryMax),
		Sync: func(ctx context.Context, key cache.ObjectName) keyqueue.Result {
			switch r.sync(ctx, key) {
			case retryNone:
				return keyqueue.Result{}
			case retryLater:
				return keyqueue.Result{RequeueAfter: r.cfg.RetryLater}
			}
			return keyqueue.Result{Err: errRetry}
		}})
}

// errRetry stands for a failed sync, which sync has logged and reported already.
var errRetry = errors.New("backend service sync failed")

// Run reconciles Services with Config.Workers workers until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	logger := klog.FromContext(ctx).WithName("backends")
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting backend service workers", "count", r.cfg.Workers, "allow", r.cfg.Allow.String())
	r.queue.Run(ctx)
}

// Update records what the NEG controller knows about a Service and enqueues it when that
// changed, or when its periodic verify is due. It is cheap and makes no API call. Services
// without autoneg annotations and with nothing tracked are ignored.
func (r *Reconciler) Update(w Want) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[w.Key]
	if st != nil && len(st.tracked) == 0 && st.status == "" && !interesting(w.Service) {
		delete(r.states, w.Key) // nothing left to do for it
		st = nil
	}
	if st == nil {
		if !interesting(w.Service) {
			return
		}
		st = &svcState{tracked: map[bsKey]*bsState{},
			verifyEvery: time.Duration(float64(r.cfg.ResyncPeriod) * (0.8 + 0.2*rand.Float64()))}
		seedFromStatus(st, w.Service)
		r.states[w.Key] = st
	}
	d := digest(w)
	st.want = w
	switch {
	case d != st.digest:
		st.digest = d
		r.queue.Add(w.Key)
	case r.clock.Since(st.verifiedAt) >= st.verifyEvery:
		r.queue.Add(w.Key)
	}
}

// Holds reports whether the NEG ref of the Service key may still be a backend of a backend
// service the reconciler manages for it: it is known to be one, a tracked backend service was
// not read yet, or a reconcile in progress may add it. The NEG must not be deleted meanwhile.
func (r *Reconciler) Holds(key cache.ObjectName, ref neg.Ref) bool {
	p := gce.ResourcePath(gce.NEGURL(r.cfg.Project, ref.Zone, ref.Name))
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[key]
	if st == nil {
		return false
	}
	if st.running[p] {
		return true
	}
	for k, b := range st.tracked {
		if !r.cfg.Allow.Allows(k.region, k.name) {
			continue // never modified by us; deleting the NEG reports it if it is still used
		}
		if !b.known || b.present[p] {
			return true
		}
	}
	return false
}

// interesting reports whether a Service has an autoneg annotation or status.
func interesting(svc *corev1.Service) bool {
	if svc == nil {
		return false
	}
	_, a := svc.Annotations[annotation.AutonegKey]
	_, s := svc.Annotations[annotation.AutonegStatusKey]
	return a || s
}

// seedFromStatus tracks the backend services of the Service's status annotation (written by
// this controller before a restart, or by gke-autoneg-controller before a switch).
func seedFromStatus(st *svcState, svc *corev1.Service) {
	if svc == nil {
		return
	}
	v, ok := svc.Annotations[annotation.AutonegStatusKey]
	if !ok {
		return
	}
	status, err := annotation.ParseAutonegStatus(v)
	if err != nil {
		return
	}
	for _, m := range status.BackendServices {
		for name, e := range m {
			if e.Name != "" {
				name = e.Name
			}
			st.tracked[bsKey{region: e.Region, name: name}] = &bsState{}
		}
	}
}

// digest summarizes a Want: the annotations the reconciler reads, the NEGs and the owned NEGs.
func digest(w Want) string {
	var b strings.Builder
	if w.Service != nil {
		fmt.Fprintf(&b, "uid=%s\x00%s\x00%s\x00", w.Service.UID, w.Service.Annotations[annotation.AutonegKey], w.Service.Annotations[annotation.AutonegSyncKey])
	}
	ports := make([]int32, 0, len(w.NEGs))
	for p := range w.NEGs {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	for _, p := range ports {
		zones := slices.Sorted(slices.Values(w.NEGs[p].Zones))
		fmt.Fprintf(&b, "%d=%s@%s\x00", p, w.NEGs[p].Name, strings.Join(zones, ","))
	}
	owned := make([]string, 0, len(w.Owned))
	for _, ref := range w.Owned {
		owned = append(owned, ref.String())
	}
	slices.Sort(owned)
	b.WriteString(strings.Join(owned, ","))
	return b.String()
}

// retry is what a reconcile asks for.
type retry int

const (
	retryNone    retry = iota // done, or waiting for a change (user error)
	retryLater                // after RetryLater (a missing backend service)
	retryBackoff              // with the per-Service exponential backoff
)

func worse(a, b retry) retry { return max(a, b) }
