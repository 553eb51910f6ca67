//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/hack/stack"
	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/readiness"
)

// load sends rate requests per second to url until stop is closed and counts the answers
// that are not 200 (errors included). At most 200 requests are in flight.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value

	mu        sync.Mutex
	latencies []time.Duration      // of successful requests
	firstSeen map[string]time.Time // pod name (X-Podsim-Pod) → first request it served
}

// record notes a successful request served by pod that took d.
func (l *load) record(pod string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latencies = append(l.latencies, d)
	if l.firstSeen == nil {
		l.firstSeen = map[string]time.Time{}
	}
	if _, ok := l.firstSeen[pod]; !ok && pod != "" {
		l.firstSeen[pod] = time.Now()
	}
}

// percentile returns the p-th percentile (0..100) of the successful requests' latencies.
func (l *load) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.latencies) == 0 {
		return 0
	}
	s := slices.Clone(l.latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

func (l *load) run(url string, rate int, stop <-chan struct{}) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	sem := make(chan struct{}, 200)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			l.failed.Add(1) // 200 requests stuck: count as a failure rather than block
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					l.record(resp.Header.Get("X-Podsim-Pod"), time.Since(t0))
					l.ok.Add(1)
					return
				}
				err = fmt.Errorf("status %d (%s)", resp.StatusCode, resp.Header.Get("X-Fakegce-Cause"))
			}
			l.failed.Add(1)
			l.firstErr.CompareAndSwap(nil, err.Error())
		})
	}
}

// rolloutDone reports whether the Deployment has rolled out its latest template completely.
func rolloutDone(kube kubernetes.Interface, ns, name string, replicas int32) (bool, string) {
	d, err := kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	s := d.Status
	done := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == replicas && s.Replicas == replicas &&
		s.AvailableReplicas == replicas && s.ReadyReplicas == replicas
	return done, fmt.Sprintf("%+v", s)
}

// TestRolloutZeroDowntime: a 10-replica Deployment behind an emulated load balancer (a
// health-checked backend service holding its NEGs, probed for real) is rolled out while a client
// sends about 200 requests/s through the frontend: first without the readiness gate, then with
// it. With the gate the rollout may only replace pods as fast as the load balancer finds new
// ones healthy: no request may fail. Without it the failures are reported (not asserted).
func TestRolloutZeroDowntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	st, err := stack.Start(klog.NewContext(ctx, klog.Background()), stack.Options{
		GCE:          fakegce.Config{OperationLatency: 20 * time.Millisecond},
		NodesPerZone: 2,
		PodMaxGrace:  30 * time.Second,
		ServePods:    true,
	})
	if err != nil {
		t.Fatalf("starting a serving stack: %v", err)
	}
	defer st.Stop()
	ctrl, err := st.StartController("", "--leader-elect=false", "--resync-period=30s", "--v=2")
	if err != nil {
		t.Fatal(err)
	}
	kube := st.Kube
	const ns, name, replicas = "default", "roll", int32(10)

	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{annotation.NEGKey: standalone80}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}},
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	negName := waitNEGName(t, kube, ns, name)
	var zones []string
	waitFor(t, 60*time.Second, "NEGs in every zone", func() (bool, string) {
		s, _ := kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		stt, err := annotation.ParseStatus(s.Annotations[annotation.NEGStatusKey])
		zones = stt.Zones
		return err == nil && len(zones) == 3, fmt.Sprint(zones)
	})

	// Health check, backend service with the NEGs (connection draining 10 s), frontend.
	hc := &compute.HealthCheck{Name: name + "-hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1, HealthyThreshold: 2,
		UnhealthyThreshold: 1, HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/"}}
	if _, err := st.Compute.HealthChecks.Insert(st.Project, hc).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "health check", func() (bool, string) {
		_, err := st.Compute.HealthChecks.Get(st.Project, hc.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	})
	var bes []*compute.Backend
	for _, z := range zones {
		bes = append(bes, &compute.Backend{Group: "https://www.googleapis.com/compute/v1/projects/" + st.Project + "/zones/" + z +
			"/networkEndpointGroups/" + negName, BalancingMode: "RATE", MaxRatePerEndpoint: 100, CapacityScaler: 1})
	}
	bs := &compute.BackendService{Name: name + "-bs", Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: bes,
		HealthChecks:       []string{"https://www.googleapis.com/compute/v1/projects/" + st.Project + "/global/healthChecks/" + hc.Name},
		ConnectionDraining: &compute.ConnectionDraining{DrainingTimeoutSec: 10}}
	if _, err := st.Compute.BackendServices.Insert(st.Project, bs).Context(ctx).Do(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "backend service", func() (bool, string) {
		_, err := st.Compute.BackendServices.Get(st.Project, bs.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	})
	fe, err := st.GCE.AddFrontend("", bs.Name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + fe + "/"

	// The Deployment: readiness probe, preStop sleep; no gate yet.
	r, grace, maxUnavailable, maxSurge := replicas, int64(30), intstr.FromString("25%"), intstr.FromString("25%")
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &r,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.k8s.io/pause:3.10",
						Env:   []corev1.EnvVar{{Name: "VERSION", Value: "1"}},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1, FailureThreshold: 1},
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}},
					}},
				},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "deployment available", func() (bool, string) { return rolloutDone(kube, ns, name, replicas) })
	waitFor(t, 60*time.Second, "the load balancer serves", func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	// Let every endpoint become healthy before the first rollout.
	time.Sleep(3 * time.Second)
	// GCE's pace, roughly: attaching takes seconds (the emulator's default is instant), and a
	// new endpoint needs two passing probes (HealthyThreshold 2) to be HEALTHY.
	st.GCE.InjectFault(fakegce.Fault{Method: attachMethod, Latency: 4 * time.Second})

	rows := []string{
		"| rollout of 10 replicas at 200 req/s | requests | failed | p50 | p99 | rollout | pod Ready → first request (median) |",
		"|---|---|---|---|---|---|---|",
	}
	rollout := func(what string, mutate func(*corev1.PodSpec)) (ok, failed int64, firstErr any) {
		var l load
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); l.run(url, 200, stop) }()
		time.Sleep(2 * time.Second) // steady traffic first
		cur, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mutate(&cur.Spec.Template.Spec)
		if _, err := kube.AppsV1().Deployments(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, 3*time.Minute, what+" rolled out", func() (bool, string) { return rolloutDone(kube, ns, name, replicas) })
		// The last old pods are still draining (preStop 5 s); keep the traffic on until they are gone.
		waitFor(t, 60*time.Second, what+": old pods gone", func() (bool, string) {
			pods, _ := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			return len(pods.Items) == int(replicas), fmt.Sprintf("%d pods", len(pods.Items))
		})
		took := time.Since(start)
		time.Sleep(2 * time.Second)
		close(stop)
		<-done
		t.Logf("%s: rollout took %s; %d requests OK, %d failed (first failure: %v)", what,
			took.Round(time.Second), l.ok.Load(), l.failed.Load(), l.firstErr.Load())
		rows = append(rows, fmt.Sprintf("| %s | %d | %d | %s | %s | %s | %s |", what, l.ok.Load()+l.failed.Load(),
			l.failed.Load(), l.percentile(50).Round(100*time.Microsecond), l.percentile(99).Round(100*time.Microsecond),
			took.Round(time.Second), readyToFirstRequest(t, kube, ns, name, &l)))
		return l.ok.Load(), l.failed.Load(), l.firstErr.Load()
	}

	_, failedWithout, _ := rollout("without readiness gates", func(p *corev1.PodSpec) {
		p.Containers[0].Env[0].Value = "2"
	})
	okWith, failedWith, firstErr := rollout("with readiness gates", func(p *corev1.PodSpec) {
		p.Containers[0].Env[0].Value = "3"
		p.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: readiness.GateType}}
	})
	if failedWith != 0 {
		t.Errorf("with readiness gates %d of %d requests failed during the rollout (first: %v)", failedWith, okWith+failedWith, firstErr)
	}
	if okWith < 1000 {
		t.Errorf("only %d requests succeeded with readiness gates: the client did not keep up", okWith)
	}
	stats, _ := st.GCE.Frontend(fe)
	t.Logf("frontend: %+v", stats)
	t.Logf("summary: %d failed requests without readiness gates, %d with\n%s", failedWithout, failedWith, strings.Join(rows, "\n"))
	if ctrl.Exited() {
		t.Errorf("controller exited:\n%s", ctrl.LogTail(40))
	}
}

// readyToFirstRequest is the median, over the Deployment's current pods, of the time from the
// pod's Ready condition turning True (second resolution) to the first request the load
// balancer sent it. Negative: the load balancer served the pod before it counted as Ready, as
// the readiness gate intends.
func readyToFirstRequest(t *testing.T, kube kubernetes.Interface, ns, app string, l *load) string {
	pods, err := kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return err.Error()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var ds []time.Duration
	for _, p := range pods.Items {
		first, ok := l.firstSeen[p.Name]
		if !ok {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ds = append(ds, first.Sub(c.LastTransitionTime.Time))
			}
		}
	}
	if len(ds) == 0 {
		return "n/a"
	}
	slices.Sort(ds)
	return fmt.Sprintf("%s (%d pods)", ds[len(ds)/2].Round(100*time.Millisecond), len(ds))
}
