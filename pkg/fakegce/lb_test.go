package fakegce_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// pod is a test HTTP server standing for a pod with IP ip (served at LoopbackFor(ip)).
type pod struct {
	name string
	ep   neg.Endpoint
	srv  *http.Server
}

// startPod serves h (nil: answer the pod's name) at LoopbackFor(ip) on a free port.
func startPod(t *testing.T, name, ip string, h http.Handler) *pod {
	t.Helper()
	host, ok := fakegce.LoopbackFor(ip)
	if !ok {
		t.Fatalf("no loopback for %s", ip)
	}
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
	}
	p := &pod{name: name, srv: &http.Server{Handler: h}}
	p.ep = neg.Endpoint{Instance: "node-1", IP: ip, Port: int64(ln.Addr().(*net.TCPAddr).Port)}
	go func() { _ = p.srv.Serve(ln) }()
	t.Cleanup(func() { _ = p.srv.Close() })
	return p
}

func (p *pod) compute() *compute.NetworkEndpoint { return ep(p.ep.Instance, p.ep.IP, p.ep.Port) }

// lbEnv is an emulator with NEG "web" in zone A behind backend service "bs" (health check "hc",
// the given draining timeout) and a frontend.
type lbEnv struct {
	*env
	addr   string
	client *http.Client
}

func newLBEnv(t *testing.T, cfg fakegce.Config, drainSec int64, hc *compute.HealthCheck, pods ...*pod) *lbEnv {
	t.Helper()
	e := newEnv(t, cfg)
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24", "192.168.7.0/24")
	e.insertNEG(zoneA, "web")
	for _, p := range pods {
		e.attach(zoneA, "web", p.compute())
	}
	bs := &compute.BackendService{Name: "bs", Backends: []*compute.Backend{negBackend(zoneA, "web")},
		ConnectionDraining: &compute.ConnectionDraining{DrainingTimeoutSec: drainSec, ForceSendFields: []string{"DrainingTimeoutSec"}}}
	if hc != nil {
		e.must(e.svc.HealthChecks.Insert(project, hc).Do())
		bs.HealthChecks = []string{hc.Name}
	}
	e.must(e.svc.BackendServices.Insert(project, bs).Do())
	addr, err := e.s.AddFrontend("", "bs", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &lbEnv{env: e, addr: addr, client: &http.Client{Transport: tr}}
}

func tcpHC() *compute.HealthCheck {
	return &compute.HealthCheck{Name: "hc", Type: "TCP", CheckIntervalSec: 1, TimeoutSec: 1, HealthyThreshold: 1, UnhealthyThreshold: 1,
		TcpHealthCheck: &compute.TCPHealthCheck{PortSpecification: "USE_SERVING_PORT"}}
}

type lbResult struct {
	code  int
	body  string
	cause string
	err   error
}

func (l *lbEnv) get(path string) lbResult {
	resp, err := l.client.Get("http://" + l.addr + path)
	if err != nil {
		return lbResult{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return lbResult{code: resp.StatusCode, body: string(data), cause: resp.Header.Get("X-Fakegce-Cause"), err: err}
}

func (l *lbEnv) stats() fakegce.FrontendStats {
	st, ok := l.s.Frontend(l.addr)
	if !ok {
		l.t.Fatalf("no frontend %s", l.addr)
	}
	return st
}

func (l *lbEnv) detach(p *pod) {
	l.t.Helper()
	l.must(l.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{p.compute()}}).Do())
}

func TestLBRoundRobinAcrossHealthy(t *testing.T) {
	var via, xff string
	var mu sync.Mutex
	a := startPod(t, "a", "10.4.1.7", nil)
	b := startPod(t, "b", "10.4.1.8", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		via, xff = r.Header.Get("Via"), r.Header.Get("X-Forwarded-For")
		mu.Unlock()
		_, _ = io.WriteString(w, "b")
	}))
	c := startPod(t, "c", "10.4.1.9", nil)
	l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a, b, c)

	got := map[string]int{}
	for range 9 {
		r := l.get("/")
		if r.err != nil || r.code != 200 {
			t.Fatalf("GET: %+v", r)
		}
		got[r.body]++
	}
	if fmt.Sprint(got) != "map[a:3 b:3 c:3]" {
		t.Errorf("spread = %v, want 3 each", got)
	}
	mu.Lock()
	if via != "1.1 google" || xff != "127.0.0.1" {
		t.Errorf("Via %q, X-Forwarded-For %q", via, xff)
	}
	mu.Unlock()
	st := l.stats()
	if st.Requests != 9 || st.Errors5xx() != 0 || st.InFlight != 0 || len(st.Endpoints) != 3 ||
		st.Endpoints[net.JoinHostPort(a.ep.IP, strconv.FormatInt(a.ep.Port, 10))] != 3 || st.BackendService != "bs" {
		t.Errorf("stats = %+v", st)
	}
	if d := l.s.State(); len(d.Frontends) != 1 || d.Frontends[0].Requests != 9 {
		t.Errorf("state dump frontends = %+v", d.Frontends)
	}
}

func TestLBExcludesUnhealthy(t *testing.T) {
	t.Run("forced", func(t *testing.T) {
		a, b := startPod(t, "a", "10.4.1.7", nil), startPod(t, "b", "10.4.1.8", nil)
		l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a, b)
		l.s.SetEndpointHealth(zoneA, "web", b.ep, "UNHEALTHY")
		for range 4 {
			if r := l.get("/"); r.body != "a" {
				t.Fatalf("GET = %+v, want a", r)
			}
		}
		l.s.SetEndpointHealth(zoneA, "web", b.ep, "DRAINING")
		if r := l.get("/"); r.body != "a" {
			t.Errorf("GET = %+v, want a (b DRAINING)", r)
		}
	})
	t.Run("probed", func(t *testing.T) {
		a := startPod(t, "a", "10.4.1.7", nil)
		dead := startPod(t, "dead", "10.4.1.8", nil)
		_ = dead.srv.Close() // attached, but nothing listens
		l := newLBEnv(t, fakegce.Config{HealthMode: fakegce.HealthModeProbe}, 30, tcpHC(), a, dead)
		eventually(t, 20*time.Second, func() string {
			h, _ := l.s.BackendHealth("", "bs")
			if len(h) != 2 || h[0].State != "HEALTHY" || h[1].State != "UNHEALTHY" {
				return fmt.Sprint(h)
			}
			return ""
		})
		for range 4 {
			if r := l.get("/"); r.body != "a" {
				t.Fatalf("GET = %+v, want a", r)
			}
		}
	})
	t.Run("no health check", func(t *testing.T) {
		a := startPod(t, "a", "10.4.1.7", nil)
		l := newLBEnv(t, fakegce.Config{}, 30, nil, a)
		if r := l.get("/"); r.code != 502 || r.cause != "no_healthy_backend" {
			t.Errorf("GET = %+v, want 502 no_healthy_backend", r)
		}
	})
	t.Run("capacity scaler 0", func(t *testing.T) {
		a := startPod(t, "a", "10.4.1.7", nil)
		l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a)
		bs, err := l.svc.BackendServices.Get(project, "bs").Do()
		if err != nil {
			t.Fatal(err)
		}
		bs.Backends[0].CapacityScaler = 0
		bs.Backends[0].ForceSendFields = []string{"CapacityScaler"}
		l.must(l.svc.BackendServices.Update(project, "bs", bs).Do())
		if r := l.get("/"); r.code != 502 || r.cause != "no_healthy_backend" {
			t.Errorf("GET = %+v, want 502 no_healthy_backend", r)
		}
	})
}

func TestLBNoHealthyBackend502(t *testing.T) {
	a := startPod(t, "a", "10.4.1.7", nil)
	l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a)
	l.s.SetEndpointHealth(zoneA, "web", a.ep, "UNHEALTHY")
	r := l.get("/")
	if r.code != 502 || r.cause != "no_healthy_backend" || !strings.Contains(r.body, "no healthy upstream") {
		t.Errorf("GET = %+v", r)
	}
	l.s.SetEndpointHealth(zoneA, "web", a.ep, "")
	if r := l.get("/"); r.code != 200 {
		t.Errorf("after recovery: %+v", r)
	}
	if st := l.stats(); st.Requests != 2 || st.NoHealthyBackend != 1 || st.Errors5xx() != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLBUpstreamErrors(t *testing.T) {
	a := startPod(t, "a", "10.4.1.7", nil)
	l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a)
	// An endpoint outside 10/8 is not routed; a HEALTHY endpoint whose server is gone fails to
	// connect; a backend's own 5xx passes through.
	l.attach(zoneA, "web", ep("node-1", "192.168.7.5", 8080))
	l.s.SetEndpointHealth(zoneA, "web", neg.Endpoint{Instance: "node-1", IP: "192.168.7.5", Port: 8080}, "HEALTHY")
	l.s.SetEndpointHealth(zoneA, "web", a.ep, "UNHEALTHY")
	if r := l.get("/"); r.code != 502 || r.cause != "upstream_error" {
		t.Errorf("unrouted endpoint: %+v", r)
	}
	l.detach(&pod{ep: neg.Endpoint{Instance: "node-1", IP: "192.168.7.5", Port: 8080}})
	l.s.SetEndpointHealth(zoneA, "web", a.ep, "HEALTHY")
	_ = a.srv.Close()
	if r := l.get("/"); r.code != 502 || r.cause != "upstream_error" {
		t.Errorf("closed endpoint: %+v", r)
	}
	b := startPod(t, "b", "10.4.1.8", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "boom", http.StatusServiceUnavailable)
	}))
	l.detach(a)
	l.attach(zoneA, "web", b.compute())
	if r := l.get("/"); r.code != 503 || r.cause != "" {
		t.Errorf("backend 503: %+v", r)
	}
	if st := l.stats(); st.UpstreamErrors != 2 || st.Backend5xx != 1 || st.NoHealthyBackend != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// slowPods returns two pods whose /slow handler reports its start on started and answers after
// release is closed (or its request ends).
func slowPods(t *testing.T, started chan<- string, release <-chan struct{}) (*pod, *pod) {
	mk := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				started <- name
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			_, _ = io.WriteString(w, name)
		})
	}
	return startPod(t, "a", "10.4.1.7", mk("a")), startPod(t, "b", "10.4.1.8", mk("b"))
}

func TestLBDetachDrainsInFlight(t *testing.T) {
	started, release := make(chan string, 4), make(chan struct{})
	a, b := slowPods(t, started, release)
	l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a, b)
	res := make(chan lbResult, 1)
	go func() { res <- l.get("/slow") }()
	victim := <-started
	other, gone := a, b
	if victim == "a" {
		other, gone = b, a
	}
	l.detach(gone)
	for range 4 {
		if r := l.get("/"); r.body != other.name {
			t.Fatalf("new request after detach = %+v, want %s", r, other.name)
		}
	}
	if st := l.stats(); st.InFlight != 1 {
		t.Errorf("in flight = %d, want 1", st.InFlight)
	}
	close(release)
	r := <-res
	if r.err != nil || r.code != 200 || r.body != victim {
		t.Errorf("in-flight request = %+v, want 200 from %s", r, victim)
	}
	if st := l.stats(); st.Errors5xx() != 0 || st.DrainingCuts != 0 || st.Requests != 5 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLBDrainingTimeoutCuts(t *testing.T) {
	stall := make(chan struct{})
	defer close(stall)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/headers-first" {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	a := startPod(t, "a", "10.4.1.7", h)
	l := newLBEnv(t, fakegce.Config{}, 1, tcpHC(), a)
	res := make(chan lbResult, 2)
	for _, p := range []string{"/no-headers", "/headers-first"} {
		go func() { res <- l.get(p) }()
	}
	eventually(t, 10*time.Second, func() string {
		if st := l.stats(); st.InFlight != 2 {
			return fmt.Sprintf("in flight %d", st.InFlight)
		}
		return ""
	})
	start := time.Now()
	l.detach(a)
	var got []string
	for range 2 {
		r := <-res
		switch {
		case r.code == 502 && r.cause == "draining_cut":
			got = append(got, "502")
		case r.code == 200 && r.err != nil && r.body == "partial":
			got = append(got, "aborted")
		default:
			t.Errorf("cut request = %+v", r)
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 8*time.Second {
		t.Errorf("cut after %v, want about the 1 s draining timeout", d)
	}
	if st := l.stats(); st.DrainingCuts != 2 || st.InFlight != 0 || st.UpstreamErrors != 0 {
		t.Errorf("got %v; stats = %+v", got, st)
	}

	// Draining timeout 0 and the NEG leaving the backend service: cut at once.
	bs, err := l.svc.BackendServices.Get(project, "bs").Do()
	if err != nil {
		t.Fatal(err)
	}
	bs.ConnectionDraining.DrainingTimeoutSec = 0
	bs.ConnectionDraining.ForceSendFields = []string{"DrainingTimeoutSec"}
	l.attach(zoneA, "web", a.compute())
	l.must(l.svc.BackendServices.Update(project, "bs", bs).Do())
	go func() { res <- l.get("/no-headers") }()
	eventually(t, 10*time.Second, func() string {
		if st := l.stats(); st.InFlight != 1 {
			return fmt.Sprintf("in flight %d", st.InFlight)
		}
		return ""
	})
	start = time.Now()
	l.must(l.svc.BackendServices.Patch(project, "bs", &compute.BackendService{Backends: []*compute.Backend{},
		ForceSendFields: []string{"Backends"}}).Do())
	if r := <-res; r.code != 502 || r.cause != "draining_cut" || time.Since(start) > 900*time.Millisecond {
		t.Errorf("with draining 0: %+v after %v", r, time.Since(start))
	}
}

func TestLBAdminAPI(t *testing.T) {
	a := startPod(t, "a", "10.4.1.7", nil)
	l := newLBEnv(t, fakegce.Config{}, 30, tcpHC(), a)
	resp, body := httpDo(t, "POST", l.base+"/admin/frontends", `{"backendService":"bs","region":"","listen":"127.0.0.1:0"}`, nil)
	var fe struct{ Address string }
	if err := json.Unmarshal([]byte(body), &fe); resp.StatusCode != 200 || err != nil || fe.Address == "" {
		t.Fatalf("POST /admin/frontends: %d %s", resp.StatusCode, body)
	}
	r2, err := http.Get("http://" + fe.Address + "/")
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if string(b2) != "a" {
		t.Errorf("via admin frontend: %q", b2)
	}
	if _, body := httpDo(t, "GET", l.base+"/admin/frontends", "", nil); !strings.Contains(body, fe.Address) {
		t.Errorf("GET /admin/frontends = %s", body)
	}
	if resp, body := httpDo(t, "DELETE", l.base+"/admin/frontends?address="+fe.Address, "", nil); resp.StatusCode != 200 {
		t.Errorf("DELETE: %d %s", resp.StatusCode, body)
	}
	if _, err := net.DialTimeout("tcp", fe.Address, time.Second); err == nil {
		t.Errorf("frontend %s still listening after DELETE", fe.Address)
	}
	for _, bad := range []string{
		`{"backendService":"nope"}`,
		`{"backendService":"bs","listen":"0.0.0.0:0"}`,
		`{"backendService":"bs","region":"europe-west1"}`,
	} {
		if resp, body := httpDo(t, "POST", l.base+"/admin/frontends", bad, nil); resp.StatusCode != 400 {
			t.Errorf("POST %s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	addr2, err := l.s.AddFrontend("", "bs", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp, body := httpDo(t, "DELETE", l.base+"/admin/frontends", `{"address":"`+addr2+`"}`, nil); resp.StatusCode != 200 {
		t.Errorf("DELETE with body: %d %s", resp.StatusCode, body)
	}
	if _, ok := l.s.Frontend(addr2); ok {
		t.Errorf("frontend %s still there", addr2)
	}
	if resp, _ := httpDo(t, "DELETE", l.base+"/admin/frontends?address=127.0.0.1:1", "", nil); resp.StatusCode != 400 {
		t.Errorf("DELETE unknown: %d", resp.StatusCode)
	}
}

func TestLBCloseLeaksNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		stall := make(chan struct{})
		defer close(stall)
		a := startPod(t, "a", "10.4.1.7", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/stall" {
				select {
				case <-stall:
				case <-r.Context().Done():
				}
			}
			_, _ = io.WriteString(w, "a")
		}))
		s := fakegce.New(fakegce.Config{})
		if err := s.AddInstance(zoneA, fakegce.InstanceSpec{Name: "node-1", IP: "10.128.0.11", AliasCIDRs: []string{"10.4.1.0/24"}}); err != nil {
			t.Fatal(err)
		}
		mustHTTP := func(method, path, body string) {
			req, _ := http.NewRequest(method, "http://fake/compute/v1/projects/"+project+"/"+path, strings.NewReader(body))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code >= 300 {
				t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
			}
		}
		mustHTTP("POST", "zones/"+zoneA+"/networkEndpointGroups", `{"name":"web","networkEndpointType":"GCE_VM_IP_PORT"}`)
		mustHTTP("POST", "zones/"+zoneA+"/networkEndpointGroups/web/attachNetworkEndpoints",
			fmt.Sprintf(`{"networkEndpoints":[{"instance":"node-1","ipAddress":"10.4.1.7","port":%d}]}`, a.ep.Port))
		mustHTTP("POST", "global/healthChecks", `{"name":"hc","type":"TCP"}`)
		mustHTTP("POST", "global/backendServices", `{"name":"bs","healthChecks":["hc"],"backends":[{"group":"`+negURL(zoneA, "web")+`","balancingMode":"RATE","maxRatePerEndpoint":1}]}`)
		addr, err := s.AddFrontend("", "bs", "")
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{}
		client := &http.Client{Transport: tr}
		for range 3 {
			resp, err := client.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done := make(chan error, 1)
		go func() {
			resp, err := client.Get("http://" + addr + "/stall")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		eventually(t, 10*time.Second, func() string {
			if st, _ := s.Frontend(addr); st.InFlight != 1 {
				return "not in flight"
			}
			return ""
		})
		s.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("in-flight request not ended by Close")
		}
		if _, err := s.AddFrontend("", "bs", ""); err == nil {
			t.Error("AddFrontend after Close succeeded")
		}
		tr.CloseIdleConnections()
		_ = a.srv.Close()
	}()
	eventually(t, 10*time.Second, func() string {
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			return fmt.Sprintf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		return ""
	})
}
