// Package rollout measures rolling updates of a serving Deployment behind an emulated load
// balancer while a client sends a steady stream of requests through it: how many requests
// fail, their latency, how long the rollout takes and how long after a new pod counts as Ready
// the load balancer first sends it a request. It is what TestRolloutZeroDowntime (e2e) asserts
// on and what the bench's rollout scenario reports, on a test/stack stack with serving pods.
//
// The load balancer is fakegce's: a health check that really probes the pods, a backend
// service holding the Service's NEG in every zone (connection draining 10 s) and a frontend
// (fakegce.Server.AddFrontend) that proxies to HEALTHY endpoints only. Setup builds it and the
// Deployment; Fixture.Run rolls the Deployment out once under load; Fixture.Compare does it
// without and then with the readiness gate cloud.google.com/load-balancer-neg-ready.
package rollout

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/api/compute/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/readiness"
	"github.com/neg-controller/neg-controller/test/objects"
	"github.com/neg-controller/neg-controller/test/stack"
)

// GCEAttachLatency is how long an attach takes once the load is on, to model GCE's pace
// (fakegce attaches at once by default): a new endpoint then needs the attach plus two passing
// probes (HealthyThreshold 2) to be HEALTHY.
const GCEAttachLatency = 4 * time.Second

// attachMethod is the method GCEAttachLatency delays.
const attachMethod = "compute.networkEndpointGroups.attachNetworkEndpoints"

// Names of the two rollouts Compare runs.
const (
	WithoutGates = "without readiness gates"
	WithGates    = "with readiness gates"
)

// StackOptions are the options of the stack a rollout runs on: pods that serve HTTP (so the
// emulator's health checks probe them), two nodes per zone, up to 30 s for a deleted pod to
// terminate (preStop sleep and draining) and GCE operations that take 20 ms.
func StackOptions() stack.Options {
	return stack.Options{
		GCE:          fakegce.Config{OperationLatency: 20 * time.Millisecond},
		NodesPerZone: 2,
		PodMaxGrace:  30 * time.Second,
		ServePods:    true,
	}
}

// ControllerFlags are the flags (after the stack's own) the controller runs with during a
// rollout.
func ControllerFlags() []string {
	return []string{"--leader-elect=false", "--resync-period=30s", "--v=2"}
}

// Config describes the Deployment, the load and the environment of Setup.
type Config struct {
	// Namespace (which must exist) and Name of the Service and Deployment; empty: default, roll.
	Namespace, Name string
	// Replicas of the Deployment; Rate is the requests per second sent through the frontend.
	Replicas int32
	Rate     int
	// AttachLatency, when positive, is injected into every attach call once the Deployment is
	// served, before the first rollout (GCEAttachLatency models GCE).
	AttachLatency time.Duration
	// Logf receives progress lines; nil: none.
	Logf func(format string, args ...any)
	// Alive, when set, is called at every poll; an error aborts the wait (say, the controller
	// exited).
	Alive func() error
}

// Fixture is a Deployment served through an emulated load balancer, ready for rollouts.
type Fixture struct {
	cfg  Config
	st   *stack.Stack
	kube kubernetes.Interface
	// NEG is the Service's NEG name and Zones the zones it exists in.
	NEG   string
	Zones []string
	// Frontend is the load balancer frontend's address; URL is where the load goes.
	Frontend string
	URL      string
}

// Setup creates on st, where a controller must be running, the Service (standalone NEG for
// port 80), the health check, the backend service holding the NEG of every zone, a frontend
// and the Deployment (readiness probe, preStop sleep 5 s, termination grace 30 s, maxSurge and
// maxUnavailable 25%, no readiness gate). It returns once every pod is served through the
// frontend, and injects cfg.AttachLatency.
func Setup(ctx context.Context, st *stack.Stack, cfg Config) (*Fixture, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.Name == "" {
		cfg.Name = "roll"
	}
	if cfg.Replicas <= 0 || cfg.Rate <= 0 {
		return nil, fmt.Errorf("rollout: want positive replicas and rate, have %d and %d", cfg.Replicas, cfg.Rate)
	}
	f := &Fixture{cfg: cfg, st: st, kube: st.Kube}
	ns, name := cfg.Namespace, cfg.Name
	svc := objects.Service(ns, name, name, 80)
	svc.Annotations = map[string]string{annotation.NEGKey: `{"exposed_ports":{"80":{}}}`}
	if _, err := f.kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating Service: %w", err)
	}
	if err := f.waitNEGs(ctx); err != nil {
		return nil, err
	}
	if err := f.loadBalancer(ctx); err != nil {
		return nil, err
	}
	if _, err := f.kube.AppsV1().Deployments(ns).Create(ctx, deployment(ns, name, cfg.Replicas), metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating Deployment: %w", err)
	}
	if err := f.WaitFor(ctx, 2*time.Minute, "deployment available", f.rolloutDone); err != nil {
		return nil, err
	}
	if err := f.WaitFor(ctx, 60*time.Second, "the load balancer serves", func(ctx context.Context) (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
		if err != nil {
			return false, err.Error()
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	}); err != nil {
		return nil, err
	}
	// Let every endpoint become healthy before the first rollout.
	if err := sleep(ctx, 3*time.Second); err != nil {
		return nil, err
	}
	if cfg.AttachLatency > 0 {
		st.GCE.InjectFault(fakegce.Fault{Method: attachMethod, Latency: cfg.AttachLatency})
	}
	return f, nil
}

// waitNEGs waits until the Service's neg-status names its port-80 NEG in every zone with nodes.
func (f *Fixture) waitNEGs(ctx context.Context) error {
	want := map[string]bool{}
	for _, n := range f.st.Nodes {
		want[n.Zone] = true
	}
	return f.WaitFor(ctx, 150*time.Second, "NEGs in every zone", func(ctx context.Context) (bool, string) {
		s, err := f.kube.CoreV1().Services(f.cfg.Namespace).Get(ctx, f.cfg.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st, err := annotation.ParseStatus(s.Annotations[annotation.NEGStatusKey])
		if err != nil {
			return false, "no neg-status"
		}
		f.NEG, f.Zones = st.NetworkEndpointGroups["80"], st.Zones
		return f.NEG != "" && len(f.Zones) == len(want), fmt.Sprintf("NEG %q in zones %v", f.NEG, f.Zones)
	})
}

// loadBalancer creates the health check, the backend service (connection draining 10 s) with
// the NEGs of every zone and the frontend.
func (f *Fixture) loadBalancer(ctx context.Context) error {
	c, project, name := f.st.Compute, f.st.Project, f.cfg.Name
	hc := &compute.HealthCheck{Name: name + "-hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1, HealthyThreshold: 2,
		UnhealthyThreshold: 1, HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/"}}
	if _, err := c.HealthChecks.Insert(project, hc).Context(ctx).Do(); err != nil {
		return fmt.Errorf("inserting health check: %w", err)
	}
	if err := f.WaitFor(ctx, 30*time.Second, "health check", func(ctx context.Context) (bool, string) {
		_, err := c.HealthChecks.Get(project, hc.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return err
	}
	var bes []*compute.Backend
	for _, z := range f.Zones {
		bes = append(bes, &compute.Backend{Group: "https://www.googleapis.com/compute/v1/projects/" + project + "/zones/" + z +
			"/networkEndpointGroups/" + f.NEG, BalancingMode: "RATE", MaxRatePerEndpoint: 100, CapacityScaler: 1})
	}
	bs := &compute.BackendService{Name: name + "-bs", Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED", Backends: bes,
		HealthChecks:       []string{"https://www.googleapis.com/compute/v1/projects/" + project + "/global/healthChecks/" + hc.Name},
		ConnectionDraining: &compute.ConnectionDraining{DrainingTimeoutSec: 10}}
	if _, err := c.BackendServices.Insert(project, bs).Context(ctx).Do(); err != nil {
		return fmt.Errorf("inserting backend service: %w", err)
	}
	if err := f.WaitFor(ctx, 30*time.Second, "backend service", func(ctx context.Context) (bool, string) {
		_, err := c.BackendServices.Get(project, bs.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return err
	}
	fe, err := f.st.GCE.AddFrontend("", bs.Name, "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("adding frontend: %w", err)
	}
	f.Frontend, f.URL = fe, "http://"+fe+"/"
	return nil
}

// deployment is the rolled-out Deployment: objects.Deployment (pods labelled app=name serving on
// port 8080) with a readiness probe, a 5 s preStop sleep and 30 s of grace; maxSurge and
// maxUnavailable 25%.
func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	grace, maxUnavailable, maxSurge := int64(30), intstr.FromString("25%"), intstr.FromString("25%")
	d := objects.Deployment(ns, name, replicas, 8080)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge}}
	pod := &d.Spec.Template.Spec
	pod.TerminationGracePeriodSeconds = &grace
	c := &pod.Containers[0]
	c.Env = []corev1.EnvVar{{Name: "VERSION", Value: "1"}}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
		Path: "/", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1, FailureThreshold: 1}
	c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}
	return d
}

// NextVersion changes the pod template (its VERSION variable) so that applying it rolls the
// Deployment out.
func NextVersion(p *corev1.PodSpec) {
	env := p.Containers[0].Env
	for i := range env {
		if env[i].Name == "VERSION" {
			n, _ := strconv.Atoi(env[i].Value)
			env[i].Value = strconv.Itoa(n + 1)
			return
		}
	}
	p.Containers[0].Env = append(env, corev1.EnvVar{Name: "VERSION", Value: "1"})
}

// AddGate is NextVersion plus the readiness gate cloud.google.com/load-balancer-neg-ready.
func AddGate(p *corev1.PodSpec) {
	NextVersion(p)
	for _, g := range p.ReadinessGates {
		if g.ConditionType == readiness.GateType {
			return
		}
	}
	p.ReadinessGates = append(p.ReadinessGates, corev1.PodReadinessGate{ConditionType: readiness.GateType})
}

// Compare rolls the Deployment out twice under load, first without the readiness gate
// (WithoutGates), then with it (WithGates), and returns the results done so far, in that order.
func (f *Fixture) Compare(ctx context.Context) ([]Result, error) {
	var out []Result
	for _, r := range []struct {
		what   string
		mutate func(*corev1.PodSpec)
	}{{WithoutGates, NextVersion}, {WithGates, AddGate}} {
		res, err := f.Run(ctx, r.what, r.mutate)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// Run sends cfg.Rate requests/s through the frontend, applies mutate to the Deployment's pod
// template 2 s later, waits until the rollout is complete and the old pods are gone, keeps the
// load on for 2 s more and returns what the load measured.
func (f *Fixture) Run(ctx context.Context, what string, mutate func(*corev1.PodSpec)) (Result, error) {
	ns, name := f.cfg.Namespace, f.cfg.Name
	change := func(ctx context.Context) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := f.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			mutate(&cur.Spec.Template.Spec)
			_, err = f.kube.AppsV1().Deployments(ns).Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
	}
	done := func(ctx context.Context) error {
		if err := f.WaitFor(ctx, 3*time.Minute, what+" rolled out", f.rolloutDone); err != nil {
			return err
		}
		// The last old pods are still draining (preStop 5 s); keep the traffic on until they are gone.
		return f.WaitFor(ctx, 60*time.Second, what+": old pods gone", func(ctx context.Context) (bool, string) {
			pods, err := f.pods(ctx)
			if err != nil {
				return false, err.Error()
			}
			return len(pods) == int(f.cfg.Replicas), fmt.Sprintf("%d pods", len(pods))
		})
	}
	return f.RunChange(ctx, what, change, done)
}

// RunChange sends cfg.Rate requests/s through the frontend, makes change 2 s later, waits for
// done (which returns once the change has fully played out), keeps the load on for 2 s more and
// returns what the load measured; Result.Rollout is how long done took.
func (f *Fixture) RunChange(ctx context.Context, what string, change, done func(context.Context) error) (Result, error) {
	res := Result{What: what}
	var l load
	stop, loadDone := make(chan struct{}), make(chan struct{})
	before, _ := f.st.GCE.Frontend(f.Frontend)
	go func() { defer close(loadDone); l.run(f.URL, f.cfg.Rate, stop) }()
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-loadDone
		}
	}
	defer stopLoad()

	if err := sleep(ctx, 2*time.Second); err != nil { // steady traffic first
		return res, err
	}
	if err := change(ctx); err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	start := time.Now()
	if err := done(ctx); err != nil {
		return res, err
	}
	res.Rollout = time.Since(start)
	if err := sleep(ctx, 2*time.Second); err != nil {
		return res, err
	}
	stopLoad()
	after, _ := f.st.GCE.Frontend(f.Frontend)

	res.OK, res.Failed, res.FirstError = l.ok.Load(), l.failed.Load(), l.firstError()
	res.Requests = res.OK + res.Failed
	lat, first := l.snapshot()
	res.P50, res.P99 = percentile(lat, 50), percentile(lat, 99)
	res.Frontend = frontendDelta(before, after)
	pods, err := f.pods(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: listing pods: %w", what, err)
	}
	res.ReadyToFirst, res.ReadyToFirstPods = readyToFirst(pods, first)
	firstErr := res.FirstError
	if firstErr == "" {
		firstErr = "none"
	}
	f.logf("%s: took %s; %d requests OK, %d failed (first failure: %s)", what,
		res.Rollout.Round(time.Second), res.OK, res.Failed, firstErr)
	return res, nil
}

// pods lists the Deployment's pods.
func (f *Fixture) pods(ctx context.Context) ([]corev1.Pod, error) {
	pods, err := f.kube.CoreV1().Pods(f.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + f.cfg.Name})
	if err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// rolloutDone reports whether the Deployment has rolled out its latest template completely.
func (f *Fixture) rolloutDone(ctx context.Context) (bool, string) {
	d, err := f.kube.AppsV1().Deployments(f.cfg.Namespace).Get(ctx, f.cfg.Name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error()
	}
	return rolloutDone(d, f.cfg.Replicas)
}

// rolloutDone reports whether d has rolled out its latest template to all replicas, and its status.
func rolloutDone(d *appsv1.Deployment, replicas int32) (bool, string) {
	s := d.Status
	done := s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == replicas && s.Replicas == replicas &&
		s.AvailableReplicas == replicas && s.ReadyReplicas == replicas
	return done, fmt.Sprintf("%+v", s)
}

// WaitFor polls cond every 250 ms until it holds; it fails after timeout (with cond's last
// explanation), when ctx ends or when cfg.Alive reports an error.
func (f *Fixture) WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, string)) error {
	start := time.Now()
	for {
		ok, detail := cond(ctx)
		if ok {
			f.logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if f.cfg.Alive != nil {
			if err := f.cfg.Alive(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("%s: not after %s: %s", what, timeout, detail)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

func (f *Fixture) logf(format string, args ...any) {
	if f.cfg.Logf != nil {
		f.cfg.Logf(format, args...)
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
