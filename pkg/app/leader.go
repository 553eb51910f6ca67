package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// leaderElector runs the controller only while this process holds the Lease. The pattern is
// the standard one (kube-controller-manager's): every replica keeps its informers warm and
// competes for the Lease; the holder runs the controller; a holder that cannot renew within
// RenewDeadline exits at once (exit(1)) so that it never acts beside a new leader, and is
// restarted by its Deployment as a standby. On a graceful stop (ctx done), the controller is
// stopped first — every call in flight finished — and the Lease is released afterwards, so a
// standby takes over within a retry period without ever overlapping.
type leaderElector struct {
	opts     LeaderElectionOptions
	client   kubernetes.Interface // a client of its own, so that syncs never delay renewals
	identity string
	metrics  *metrics.Metrics
	// exit ends the process when the Lease is lost (os.Exit; tests replace it).
	exit func(code int)

	// lock records when the Lease was last read or written successfully (standby health).
	lock   *observedLock
	health *leaderelection.HealthzAdaptor
}

// newLeaderElector prepares leader election; identity is hostname_<uuid>.
func newLeaderElector(opts LeaderElectionOptions, client kubernetes.Interface, m *metrics.Metrics) (*leaderElector, error) {
	host, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("leader election identity: %w", err)
	}
	id := host + "_" + uuid.NewString()
	l := &leaderElector{opts: opts, client: client, identity: id, metrics: m, exit: os.Exit,
		health: leaderelection.NewLeaderHealthzAdaptor(opts.RenewDeadline)}
	l.lock = &observedLock{Interface: &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: opts.leaseNamespace(), Name: opts.Name},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}}
	return l, nil
}

// check is the leader-election part of readiness: a leader must be renewing its Lease; a
// standby must have read the Lease within the lease duration (so it can take over).
func (l *leaderElector) check(req *http.Request) error {
	if err := l.health.Check(req); err != nil {
		return err
	}
	last := l.lock.lastSuccess()
	if last.IsZero() {
		return errors.New("the leader election Lease has not been read yet")
	}
	if age := time.Since(last); age > l.opts.LeaseDuration {
		return fmt.Errorf("the leader election Lease was last read or written %s ago", age.Round(time.Second))
	}
	return nil
}

// run blocks until ctx is done (or run's function fails), running fn while leading. fn gets
// ctx itself: it stops on shutdown, and on a lost Lease the process exits.
func (l *leaderElector) run(ctx context.Context, fn func(context.Context) error) error {
	logger := klog.FromContext(ctx).WithValues("lease", klog.KRef(l.opts.leaseNamespace(), l.opts.Name), "identity", l.identity)
	var (
		mu       sync.Mutex
		stopping bool // set before the elector is stopped on purpose
		started  bool
		finished = make(chan error, 1)
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            l.lock,
		LeaseDuration:   l.opts.LeaseDuration,
		RenewDeadline:   l.opts.RenewDeadline,
		RetryPeriod:     l.opts.RetryPeriod,
		ReleaseOnCancel: true, // only cancelled after fn has returned (below)
		Name:            l.opts.Name,
		WatchDog:        l.health,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				mu.Lock()
				if stopping {
					mu.Unlock()
					return
				}
				started = true
				mu.Unlock()
				l.metrics.SetLeader(true)
				logger.Info("Acquired the leader Lease; starting the controller")
				finished <- fn(ctx)
			},
			OnStoppedLeading: func() {
				l.metrics.SetLeader(false)
				mu.Lock()
				s := stopping
				mu.Unlock()
				if s {
					logger.Info("Stopped leader election")
					return
				}
				logger.Error(errors.New("leader Lease lost"), "Lost the leader Lease; exiting so that only the new leader acts")
				klog.Flush()
				l.exit(1)
			},
			OnNewLeader: func(holder string) {
				if holder != l.identity {
					logger.Info("Another replica holds the leader Lease; standing by", "leader", holder)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	l.health.SetLeaderElection(le)
	l.metrics.SetLeader(false)
	logger.Info("Starting leader election", "leaseDuration", l.opts.LeaseDuration,
		"renewDeadline", l.opts.RenewDeadline, "retryPeriod", l.opts.RetryPeriod)

	leCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	electionDone := make(chan struct{})
	go func() {
		defer close(electionDone)
		le.Run(leCtx)
	}()

	var runErr error
	select {
	case <-ctx.Done():
		mu.Lock()
		stopping = true
		wasStarted := started
		mu.Unlock()
		if wasStarted {
			runErr = <-finished // fn stops with ctx; wait for its calls to end
		}
	case runErr = <-finished:
		mu.Lock()
		stopping = true
		mu.Unlock()
	}
	stopElection() // releases the Lease if held
	<-electionDone
	return runErr
}

// observedLock is a resource lock that remembers its last successful API round trip.
type observedLock struct {
	resourcelock.Interface
	mu   sync.Mutex
	last time.Time
}

func (o *observedLock) record(err error) {
	if err == nil {
		o.mu.Lock()
		o.last = time.Now()
		o.mu.Unlock()
	}
}

func (o *observedLock) lastSuccess() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

func (o *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, b, err := o.Interface.Get(ctx)
	o.record(err)
	return r, b, err
}

func (o *observedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := o.Interface.Create(ctx, ler)
	o.record(err)
	return err
}

func (o *observedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	err := o.Interface.Update(ctx, ler)
	o.record(err)
	return err
}

// leaderElectionClient returns the client of leader election: separate from the controller's,
// with its own rate limit, and a timeout so that a hung request cannot outlast the renew
// deadline.
func leaderElectionClient(cfg *rest.Config, o *Options) (kubernetes.Interface, error) {
	if !o.LeaderElection.Enabled {
		return nil, nil
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = UserAgent + "/leader-election"
	cfg.QPS, cfg.Burst = 5, 10
	cfg.Timeout = o.LeaderElection.RenewDeadline / 2
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the leader election client: %w", err)
	}
	return c, nil
}

// runController runs the controller until ctx is done: at once without leader election
// (readiness: caches synced), else only while this process holds the Lease (readiness: caches
// synced and the Lease renewed or readable).
func runController(ctx context.Context, o *Options, client kubernetes.Interface, obs *observability,
	synced func() bool, run func(context.Context) error) error {
	if !o.LeaderElection.Enabled {
		obs.ready.set(synced, nil)
		obs.metrics.SetLeader(true)
		return run(ctx)
	}
	le, err := newLeaderElector(o.LeaderElection, client, obs.metrics)
	if err != nil {
		return err
	}
	obs.ready.set(synced, le.check)
	return le.run(ctx, run)
}

// leaderElection returns the client for the Lease: LeaderElection, else Kube.
func (cl Clients) leaderElection() kubernetes.Interface {
	if cl.LeaderElection != nil {
		return cl.LeaderElection
	}
	return cl.Kube
}
