package fakegce_test

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// healths returns, per endpoint IP, the health states listNetworkEndpoints(SHOW) reports.
func (e *env) healths(zone, name string) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for _, it := range e.listAll(zone, name, "SHOW", 0) {
		var states []string
		for _, h := range it.Healths {
			states = append(states, last(h.BackendService.BackendService)+"/"+last(h.HealthCheck.HealthCheck)+"="+h.HealthState)
		}
		out[it.NetworkEndpoint.IpAddress] = states
	}
	return out
}

func TestFixedHealth(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	for _, n := range []string{"checked", "unchecked", "lonely"} {
		e.insertNEG(zoneA, n)
	}
	e.attach(zoneA, "checked", ep("node-1", "10.4.1.7", 8080))
	e.attach(zoneA, "unchecked", ep("node-1", "10.4.1.8", 8080))
	e.attach(zoneA, "lonely", ep("node-1", "10.4.1.9", 8080))
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "HTTP",
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT"}}).Do())
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "with-hc", HealthChecks: []string{"hc"},
		Backends: []*compute.Backend{negBackend(zoneA, "checked")}}).Do())
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "without-hc",
		Backends: []*compute.Backend{negBackend(zoneA, "unchecked"), negBackend(zoneA, "checked")}}).Do())

	if got := e.healths(zoneA, "checked"); fmt.Sprint(got) != "map[10.4.1.7:[with-hc/hc=HEALTHY]]" {
		t.Errorf("checked: %v", got)
	}
	for _, n := range []string{"unchecked", "lonely"} {
		for ip, h := range e.healths(zoneA, n) {
			if len(h) != 0 {
				t.Errorf("%s %s: healths %v, want none", n, ip, h)
			}
		}
	}
	items := e.listAll(zoneA, "checked", "SHOW", 0)
	h := items[0].Healths[0]
	if h.BackendService.BackendService != linkPfx+"global/backendServices/with-hc" || h.HealthCheck.HealthCheck != linkPfx+"global/healthChecks/hc" {
		t.Errorf("health entry = %+v %+v", h.BackendService, h.HealthCheck)
	}
	gh, err := e.svc.BackendServices.GetHealth(project, "with-hc", &compute.ResourceGroupReference{Group: negURL(zoneA, "checked")}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if len(gh.HealthStatus) != 1 || gh.HealthStatus[0].IpAddress != "10.4.1.7" || gh.HealthStatus[0].Port != 8080 ||
		gh.HealthStatus[0].HealthState != "HEALTHY" || gh.HealthStatus[0].Instance != linkPfx+"zones/"+zoneA+"/instances/node-1" {
		t.Errorf("getHealth = %+v", gh.HealthStatus)
	}
	if gh, err := e.svc.BackendServices.GetHealth(project, "without-hc", &compute.ResourceGroupReference{Group: negURL(zoneA, "unchecked")}).Do(); err != nil || len(gh.HealthStatus) != 0 {
		t.Errorf("getHealth without health check = %+v, %v", gh, err)
	}
	_, err = e.svc.BackendServices.GetHealth(project, "with-hc", &compute.ResourceGroupReference{Group: negURL(zoneA, "lonely")}).Do()
	wantAPIError(t, err, 400, "invalid")

	// Forced states win, are dropped on detach.
	target := neg.Endpoint{Instance: "node-1", IP: "10.4.1.7", Port: 8080}
	for _, st := range []string{"UNHEALTHY", "DRAINING", "UNKNOWN", "HEALTHY"} {
		e.s.SetEndpointHealth(zoneA, "checked", target, st)
		if got := e.healths(zoneA, "checked")["10.4.1.7"]; fmt.Sprint(got) != "[with-hc/hc="+st+"]" {
			t.Errorf("forced %s: %v", st, got)
		}
	}
	if err := e.s.ForceEndpointHealth(zoneA, "checked", target, "SICK"); err == nil {
		t.Error("bad state accepted")
	}
	be, err := e.s.BackendHealth("", "with-hc")
	if err != nil || len(be) != 1 || be[0].State != "HEALTHY" || be[0].Endpoint != target {
		t.Errorf("BackendHealth = %+v, %v", be, err)
	}
}

func TestFixedHealthyDelay(t *testing.T) {
	e := newEnv(t, fakegce.Config{FixedHealthyDelay: 400 * time.Millisecond})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.insertNEG(zoneA, "web")
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "bs", HealthChecks: []string{"hc"},
		Backends: []*compute.Backend{negBackend(zoneA, "web")}}).Do())
	start := time.Now()
	e.attach(zoneA, "web", ep("node-1", "10.4.1.7", 80))
	first := e.healths(zoneA, "web")["10.4.1.7"]
	if time.Since(start) < 300*time.Millisecond && fmt.Sprint(first) != "[bs/hc=UNKNOWN]" {
		t.Errorf("right after attach: %v, want UNKNOWN", first)
	}
	eventually(t, 30*time.Second, func() string {
		if got := e.healths(zoneA, "web")["10.4.1.7"]; fmt.Sprint(got) != "[bs/hc=HEALTHY]" {
			return fmt.Sprint(got)
		}
		return ""
	})
	if time.Since(start) < 400*time.Millisecond {
		t.Errorf("HEALTHY after %v, before the delay", time.Since(start))
	}
}

func TestLoopbackFor(t *testing.T) {
	for _, tc := range []struct {
		ip, want string
		ok       bool
	}{
		{"10.0.0.7", "127.0.0.7", true},
		{"10.244.3.17", "127.244.3.17", true},
		{"192.168.1.1", "", false},
		{"172.18.0.2", "", false},
		{"127.0.0.1", "", false},
		{"8.8.8.8", "", false},
		{"fd00::1", "127.0.0.1", true},
		{"fd20::4001:40:105", "127.64.1.5", true},   // test/podsim's pod fd20::<node>:<A>:<BC> = 10.A.B.C
		{"fd20:abc:1:2:3:4:5:6", "127.5.0.6", true}, // the last three bytes, whatever the prefix
		{"fd20::4001:40:105%eth0", "", false},       // a zone
		{"fc00::1", "", false},
		{"2001:db8::a40:105", "", false},
		{"::ffff:10.0.0.7", "", false}, // IPv4-mapped
		{"::1", "", false},
		{"garbage", "", false},
	} {
		if got, ok := fakegce.LoopbackFor(tc.ip); got != tc.want || ok != tc.ok {
			t.Errorf("LoopbackFor(%q) = %q, %v; want %q, %v", tc.ip, got, ok, tc.want, tc.ok)
		}
	}
}

// fakegceGoroutines counts goroutines running code of package fakegce (other than tests).
func fakegceGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var sample string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "neg-controller/pkg/fakegce.") && !strings.Contains(g, "fakegce_test.") {
			n++
			sample = g
		}
	}
	return n, sample
}

// TestProbeHealth probes a real HTTP server through the emulated VPC: endpoint 10.0.0.7:PORT
// is served on 127.0.0.7:PORT.
func TestProbeHealth(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.7:0")
	if err != nil {
		t.Fatalf("cannot listen on 127.0.0.7 (the emulator's loopback rule needs Linux-style loopback /8): %v", err)
	}
	port := int64(ln.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "ok")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	e := newEnv(t, fakegce.Config{HealthMode: fakegce.HealthModeProbe})
	e.addInstance(zoneA, "node-1", "10.0.0.2", "10.0.0.0/24")
	e.insertNEG(zoneA, "web")
	e.attach(zoneA, "web", ep("node-1", "10.0.0.7", port), ep("node-1", "10.0.0.8", port))
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1,
		HealthyThreshold: 1, UnhealthyThreshold: 2,
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/healthz"}}).Do())
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "wrong-path", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1,
		HttpHealthCheck: &compute.HTTPHealthCheck{Port: port, PortSpecification: "USE_FIXED_PORT", RequestPath: "/nope"}}).Do())
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "tcp", Type: "TCP", CheckIntervalSec: 1, TimeoutSec: 1,
		HealthyThreshold: 1, UnhealthyThreshold: 1, TcpHealthCheck: &compute.TCPHealthCheck{Port: port}}).Do())
	for _, hc := range []string{"hc", "wrong-path", "tcp"} {
		e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "bs-" + hc, HealthChecks: []string{hc},
			Backends: []*compute.Backend{negBackend(zoneA, "web")}}).Do())
	}
	want := func(want map[string]string) func() string {
		return func() string {
			got := e.healths(zoneA, "web")
			gotS := fmt.Sprint(got)
			for ip, w := range want {
				if strings.Join(got[ip], " ") != w {
					return gotS
				}
			}
			return ""
		}
	}
	// 10.0.0.7 answers; 10.0.0.8 (127.0.0.8) has no server.
	eventually(t, 30*time.Second, want(map[string]string{
		"10.0.0.7": "bs-hc/hc=HEALTHY bs-tcp/tcp=HEALTHY bs-wrong-path/wrong-path=UNHEALTHY",
		"10.0.0.8": "bs-hc/hc=UNHEALTHY bs-tcp/tcp=UNHEALTHY bs-wrong-path/wrong-path=UNHEALTHY",
	}))
	srv.Close()
	eventually(t, 30*time.Second, want(map[string]string{
		"10.0.0.7": "bs-hc/hc=UNHEALTHY bs-tcp/tcp=UNHEALTHY bs-wrong-path/wrong-path=UNHEALTHY",
	}))
	// Probers stop when their backends go away.
	for _, hc := range []string{"hc", "wrong-path", "tcp"} {
		e.must(e.svc.BackendServices.Delete(project, "bs-"+hc).Do())
	}
	eventually(t, 30*time.Second, func() string {
		if n, g := fakegceGoroutines(); n > 2 { // the op runner and the prober's scheduler
			return fmt.Sprintf("%d fakegce goroutines, e.g.\n%s", n, g)
		}
		return ""
	})
}

// TestNoGoroutineLeak checks that Close stops everything the emulator started, in both modes.
func TestNoGoroutineLeak(t *testing.T) {
	for _, mode := range []string{fakegce.HealthModeFixed, fakegce.HealthModeProbe} {
		s := fakegce.New(fakegce.Config{HealthMode: mode, OperationLatency: time.Hour})
		if n, _ := fakegceGoroutines(); n == 0 {
			t.Errorf("%s: no background goroutine found; the check is blind", mode)
		}
		s.Close()
		s.Close() // idempotent
		eventually(t, 30*time.Second, func() string {
			if n, g := fakegceGoroutines(); n != 0 {
				return fmt.Sprintf("%s: %d fakegce goroutines after Close, e.g.\n%s", mode, n, g)
			}
			return ""
		})
	}
}
