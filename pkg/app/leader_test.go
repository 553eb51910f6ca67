package app

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// gaugeValue returns the value of an unlabelled gauge of reg.
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// fastLease is a lease short enough for tests.
var fastLease = LeaderElectionOptions{Enabled: true, Namespace: "kube-system", Name: "neg-controller-test",
	LeaseDuration: 1500 * time.Millisecond, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}

// replica is one candidate running a fake controller that counts how many replicas run.
type replica struct {
	le      *leaderElector
	cancel  context.CancelFunc
	done    chan error
	running atomic.Bool
	exited  chan int
}

func startReplica(t *testing.T, kube *fake.Clientset, active *atomic.Int32, overlap *atomic.Bool) *replica {
	t.Helper()
	le, err := newLeaderElector(fastLease, kube, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{le: le, done: make(chan error, 1), exited: make(chan int, 1)}
	le.exit = func(code int) { r.exited <- code }
	_, ctx := ktesting.NewTestContext(t)
	ctx, r.cancel = context.WithCancel(ctx)
	go func() {
		r.done <- le.run(ctx, func(ctx context.Context) error {
			if active.Add(1) > 1 {
				overlap.Store(true)
			}
			r.running.Store(true)
			<-ctx.Done()
			time.Sleep(200 * time.Millisecond) // calls in flight finishing
			r.running.Store(false)
			active.Add(-1)
			return nil
		})
	}()
	t.Cleanup(func() { r.cancel(); <-r.done })
	return r
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func holder(t *testing.T, kube *fake.Clientset) string {
	t.Helper()
	l, err := kube.CoordinationV1().Leases(fastLease.Namespace).Get(context.Background(), fastLease.Name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// TestLeaderHandover: one of two replicas runs; stopping it releases the Lease only after its
// controller returned, and the standby takes over well within the lease duration; the two never
// run at once.
func TestLeaderHandover(t *testing.T) {
	kube := fake.NewClientset()
	var active atomic.Int32
	var overlap atomic.Bool
	a := startReplica(t, kube, &active, &overlap)
	waitUntil(t, 5*time.Second, "first replica leads", a.running.Load)
	b := startReplica(t, kube, &active, &overlap)
	time.Sleep(500 * time.Millisecond)
	if b.running.Load() {
		t.Fatal("standby runs while the leader holds the Lease")
	}
	if err := b.le.check(&http.Request{}); err != nil {
		t.Errorf("standby not ready: %v", err)
	}
	if err := a.le.check(&http.Request{}); err != nil {
		t.Errorf("leader not ready: %v", err)
	}
	if h := holder(t, kube); h != a.le.identity {
		t.Errorf("holder %q, want %q", h, a.le.identity)
	}

	a.cancel()
	if err := <-a.done; err != nil {
		t.Errorf("leader run: %v", err)
	}
	a.done <- nil // for the cleanup
	took := waitUntil(t, 5*time.Second, "standby takes over", b.running.Load)
	if took > fastLease.LeaseDuration {
		t.Errorf("takeover after a graceful stop took %s, want < lease duration %s (Lease released)", took, fastLease.LeaseDuration)
	}
	if overlap.Load() {
		t.Error("two replicas ran at once")
	}
	if h := holder(t, kube); h != b.le.identity {
		t.Errorf("holder %q, want %q", h, b.le.identity)
	}
	select {
	case code := <-a.exited:
		t.Errorf("graceful stop called exit(%d)", code)
	default:
	}
}

// TestLeaderExitsWhenLeaseLost: a leader that cannot renew its Lease within the renew deadline
// exits with code 1.
func TestLeaderExitsWhenLeaseLost(t *testing.T) {
	kube := fake.NewClientset()
	// Once failing is set, the API server stops accepting renewals (reactors must be added
	// before the client is used).
	var failing atomic.Bool
	kube.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	var active atomic.Int32
	var overlap atomic.Bool
	a := startReplica(t, kube, &active, &overlap)
	waitUntil(t, 5*time.Second, "replica leads", a.running.Load)
	failing.Store(true)
	select {
	case code := <-a.exited:
		if code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("leader did not exit after losing the Lease")
	}
}

// TestLeaderGauge: the leader gauge follows leadership.
func TestLeaderGauge(t *testing.T) {
	kube := fake.NewClientset()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	le, err := newLeaderElector(fastLease, kube, m)
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- le.run(ctx, func(ctx context.Context) error { close(started); <-ctx.Done(); return nil })
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("not leading")
	}
	if v := gaugeValue(t, reg, "neg_controller_leader"); v != 1 {
		t.Errorf("leader gauge %v while leading", v)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if v := gaugeValue(t, reg, "neg_controller_leader"); v != 0 {
		t.Errorf("leader gauge %v after stopping", v)
	}
	if h := holder(t, kube); h != "" {
		t.Errorf("Lease still held by %q after a graceful stop", h)
	}
}
