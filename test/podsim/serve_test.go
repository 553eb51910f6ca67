package podsim

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestPreStopSleep(t *testing.T) {
	exec := func(cmd ...string) *corev1.Lifecycle {
		return &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: cmd}}}
	}
	for _, tc := range []struct {
		name string
		lc   *corev1.Lifecycle
		want time.Duration
	}{
		{"none", nil, 0},
		{"no preStop", &corev1.Lifecycle{}, 0},
		{"sleep action", &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 7}}}, 7 * time.Second},
		{"exec sleep", exec("sleep", "5"), 5 * time.Second},
		{"exec /bin/sleep fraction", exec("/bin/sleep", "2.5"), 2500 * time.Millisecond},
		{"exec sleep suffix", exec("sleep", "1m"), time.Minute},
		{"sh -c", exec("/bin/sh", "-c", "sleep 15"), 15 * time.Second},
		{"sh -c script", exec("sh", "-c", "echo bye; sleep 3 && nginx -s quit"), 3 * time.Second},
		{"bash -ec", exec("/bin/bash", "-ec", "sleep 4s"), 4 * time.Second},
		{"sh -c no sleep", exec("/bin/sh", "-c", "nginx -s quit"), 0},
		{"sh -c sleeper", exec("/bin/sh", "-c", "sleeper 3"), 0},
		{"bad number", exec("sleep", "soon"), 0},
		{"negative", exec("sleep", "-1"), 0},
		{"other binary", exec("/app", "5"), 0},
		{"httpGet", &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/quit"}}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := preStopSleep(&corev1.Container{Lifecycle: tc.lc}); got != tc.want {
				t.Errorf("preStopSleep = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadinessProbeOf(t *testing.T) {
	c := corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}
	if _, ok := readinessProbeOf(&c); ok {
		t.Error("probe without readinessProbe")
	}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}}
	if _, ok := readinessProbeOf(&c); ok {
		t.Error("tcpSocket probe taken as httpGet")
	}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "healthz", Port: intstr.FromString("http")}}}
	got, ok := readinessProbeOf(&c)
	want := readinessProbe{container: "app", port: 8080, path: "/healthz", period: 10 * time.Second, timeout: time.Second, success: 1, failures: 3}
	if !ok || got != want {
		t.Errorf("defaults: %+v, want %+v", got, want)
	}
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/r", Port: intstr.FromInt32(9090)}},
		InitialDelaySeconds: 600, PeriodSeconds: 60, TimeoutSeconds: 30, SuccessThreshold: 50, FailureThreshold: 2}
	got, _ = readinessProbeOf(&c)
	want = readinessProbe{container: "app", port: 9090, path: "/r", initialDelay: 30 * time.Second, period: 10 * time.Second,
		timeout: 10 * time.Second, success: 10, failures: 2}
	if got != want {
		t.Errorf("capped: %+v, want %+v", got, want)
	}
	if p := servedPorts(&c); len(p) != 2 || p[0] != 8080 || p[1] != 9090 {
		t.Errorf("servedPorts = %v, want [8080 9090]", p)
	}
	c.ReadinessProbe.HTTPGet.Port = intstr.FromString("nope")
	if got, _ := readinessProbeOf(&c); got.port != 0 {
		t.Errorf("unknown named port resolved to %d", got.port)
	}
}

// servedPod is a pod with one container serving 8080, an httpGet readiness probe every second
// and the given preStop sleep.
func servedPod(name string, preStopSeconds int64) *corev1.Pod {
	grace := int64(30)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &grace, Containers: []corev1.Container{{
			Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 1,
				ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}},
			Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: preStopSeconds}}},
		}}},
	}
}

type answer struct {
	code int
	body string
	err  error
}

func get(url string) answer {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{code: resp.StatusCode, body: string(b), err: err}
}

// podURL waits for the pod's IP and returns its loopback URL on port 8080.
func podURL(t *testing.T, client *fake.Clientset, name string) string {
	t.Helper()
	var ip string
	eventually(t, name+" IP", func() (bool, string) {
		if p := getPod(t, client, name); p != nil {
			ip = p.Status.PodIP
		}
		return ip != "", ""
	})
	host, ok := fakegce.LoopbackFor(ip)
	if !ok {
		t.Fatalf("pod IP %s has no loopback address", ip)
	}
	return "http://" + net.JoinHostPort(host, "8080")
}

func TestServeReadinessFollowsServer(t *testing.T) {
	ctx := context.Background()
	client := newFakeClient()
	_, runCtx := ktesting.NewTestContext(t)
	runCtx, cancel := context.WithCancel(runCtx)
	done := make(chan error, 1)
	go func() {
		done <- Run(runCtx, client, Config{Project: "proj", Nodes: isolatedNodes("z-a"), Serve: true,
			ReadyDelay: time.Hour, MaxGrace: 5 * time.Second})
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	defer stop()

	if _, err := client.CoreV1().Pods("ns").Create(ctx, servedPod("p", 0), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	url := podURL(t, client, "p")
	// ReadyDelay is an hour: only the readiness probe can make the pod ready.
	eventually(t, "pod ready by probe", func() (bool, string) {
		return podReady(getPod(t, client, "p")) == corev1.ConditionTrue, string(podReady(getPod(t, client, "p")))
	})
	if a := get(url + "/any/path"); a.err != nil || a.code != 200 || a.body != "p" {
		t.Errorf("GET = %+v, want 200 p", a)
	}

	// The server answers 503: the probe fails, ContainersReady and Ready turn False.
	p := getPod(t, client, "p")
	p.Annotations = map[string]string{HTTPStatusAnnotation: "503"}
	if _, err := client.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod unready", func() (bool, string) {
		p := getPod(t, client, "p")
		c := findCondition(p.Status.Conditions, corev1.ContainersReady)
		return podReady(p) == corev1.ConditionFalse && c != nil && c.Status == corev1.ConditionFalse, string(podReady(p))
	})
	if a := get(url + "/"); a.code != 503 {
		t.Errorf("GET = %+v, want 503", a)
	}

	// Servers stop with podsim.
	stop()
	if a := get(url + "/"); a.err == nil {
		t.Errorf("GET after podsim stopped = %+v, want a connection error", a)
	}
}

func TestServePreStopThenStops(t *testing.T) {
	ctx := context.Background()
	client := newFakeClient()
	startSim(t, client, Config{Project: "proj", Nodes: isolatedNodes("z-a"), Serve: true, MaxGrace: 10 * time.Second})
	if _, err := client.CoreV1().Pods("ns").Create(ctx, servedPod("p", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	url := podURL(t, client, "p")
	eventually(t, "pod ready", func() (bool, string) {
		return podReady(getPod(t, client, "p")) == corev1.ConditionTrue, ""
	})

	// Graceful deletion as the apiserver records it (the fake clientset deletes at once).
	p := getPod(t, client, "p")
	now, grace := metav1.Now(), int64(30)
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace
	start := time.Now()
	if _, err := client.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	inflight := make(chan answer, 1)
	go func() { inflight <- get(url + "/?sleep=1500ms") }()
	time.Sleep(300 * time.Millisecond)
	if a := get(url + "/"); a.code != 200 || a.body != "p" {
		t.Errorf("GET during preStop = %+v, want 200", a)
	}
	eventually(t, "listener closed after preStop", func() (bool, string) {
		a := get(url + "/")
		return a.err != nil, ""
	})
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("stopped serving after %v, before the 1 s preStop sleep", d)
	}
	if a := <-inflight; a.err != nil || a.code != 200 || a.body != "p" {
		t.Errorf("request in flight across the stop = %+v, want 200", a)
	}
	eventually(t, "pod deleted", func() (bool, string) { return getPod(t, client, "p") == nil, "" })
	if d := time.Since(start); d < 1400*time.Millisecond || d > 9*time.Second {
		t.Errorf("pod deleted after %v, want after the in-flight request and well before the grace cap", d)
	}
}

// TestServedPodBehindFakeLB checks that podsim, fakegce's prober and its load balancer agree on
// the loopback rule: a served pod attached to a NEG behind a probed backend service gets
// traffic through a frontend, and a request in flight when it is detached finishes.
func TestServedPodBehindFakeLB(t *testing.T) {
	ctx := context.Background()
	const zone = "us-central1-a"
	gce, base := fakegce.NewTestServer(t, fakegce.Config{Project: "proj", Zones: []string{zone}, HealthMode: fakegce.HealthModeProbe})
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	client := newFakeClient()
	nodes := isolatedNodes(zone)
	startSim(t, client, Config{Project: "proj", Nodes: nodes, Compute: svc, Serve: true, MaxGrace: 10 * time.Second})
	if _, err := client.CoreV1().Pods("ns").Create(ctx, servedPod("p", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	podURL(t, client, "p")
	eventually(t, "pod ready", func() (bool, string) { return podReady(getPod(t, client, "p")) == corev1.ConditionTrue, "" })
	pod := getPod(t, client, "p")

	do := func(op *compute.Operation, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := waitZoneOpOrGlobal(ctx, svc, op); err != nil {
			t.Fatal(err)
		}
	}
	endpoint := &compute.NetworkEndpoint{Instance: pod.Spec.NodeName, IpAddress: pod.Status.PodIP, Port: 8080}
	do(svc.NetworkEndpointGroups.Insert("proj", zone, &compute.NetworkEndpointGroup{Name: "web", NetworkEndpointType: "GCE_VM_IP_PORT", DefaultPort: 8080}).Do())
	do(svc.NetworkEndpointGroups.AttachNetworkEndpoints("proj", zone, "web",
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{endpoint}}).Do())
	do(svc.HealthChecks.Insert("proj", &compute.HealthCheck{Name: "hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1,
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/ready"}}).Do())
	do(svc.BackendServices.Insert("proj", &compute.BackendService{Name: "bs", HealthChecks: []string{"hc"},
		ConnectionDraining: &compute.ConnectionDraining{DrainingTimeoutSec: 10},
		Backends: []*compute.Backend{{Group: "https://www.googleapis.com/compute/v1/projects/proj/zones/" + zone + "/networkEndpointGroups/web",
			BalancingMode: "RATE", MaxRatePerEndpoint: 1}}}).Do())
	addr, err := gce.AddFrontend("", "bs", "")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod answers through the load balancer", func() (bool, string) {
		a := get("http://" + addr + "/")
		return a.code == 200 && a.body == "p", a.body
	})

	inflight := make(chan answer, 1)
	go func() { inflight <- get("http://" + addr + "/?sleep=1s") }()
	eventually(t, "request in flight", func() (bool, string) {
		st, _ := gce.Frontend(addr)
		return st.InFlight == 1, ""
	})
	do(svc.NetworkEndpointGroups.DetachNetworkEndpoints("proj", zone, "web",
		&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{endpoint}}).Do())
	if a := get("http://" + addr + "/"); a.code != 502 {
		t.Errorf("after detach: %+v, want 502 (no healthy upstream)", a)
	}
	if a := <-inflight; a.code != 200 || a.body != "p" {
		t.Errorf("in flight across detach: %+v, want 200", a)
	}
	if st, _ := gce.Frontend(addr); st.DrainingCuts != 0 || st.UpstreamErrors != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// waitZoneOpOrGlobal waits for a zonal or global operation.
func waitZoneOpOrGlobal(ctx context.Context, svc *compute.Service, op *compute.Operation) error {
	if op.Zone != "" {
		return waitZoneOp(ctx, svc, "proj", op.Zone[strings.LastIndexByte(op.Zone, '/')+1:], op)
	}
	for op.Status != "DONE" {
		var err error
		if op, err = svc.GlobalOperations.Wait("proj", op.Name).Context(ctx).Do(); err != nil {
			return err
		}
	}
	if op.Error != nil {
		return fmt.Errorf("operation %s failed: %+v", op.Name, op.Error.Errors[0])
	}
	return nil
}

// isolatedNodes is one node in zone whose pod range (10.201.1.0/24, served at 127.201.1.x) no
// local stack uses (they use 10.64.0.0/16), so these tests can run beside `make run` or an e2e
// suite on the same host without fighting over loopback addresses.
func isolatedNodes(zone string) []NodeSpec {
	return []NodeSpec{{Name: "node-" + zone + "-0", Zone: zone, PodCIDR: "10.201.1.0/24", IP: "10.1.0.1"}}
}
