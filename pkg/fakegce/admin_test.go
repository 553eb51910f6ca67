package fakegce_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

const attachMethod = "compute.networkEndpointGroups.attachNetworkEndpoints"

func TestFaultRate(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.insertNEG(zoneA, "web")
	e.s.InjectFault(fakegce.Fault{Method: attachMethod, Code: 429, Rate: 0.2})
	const calls = 400
	failed := 0
	for i := 0; i < calls; i++ {
		_, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
			&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 80)}}).Do()
		if err != nil {
			ge := wantAPIError(t, err, 429, "rateLimitExceeded")
			if !strings.Contains(ge.Message, "Quota exceeded") {
				t.Errorf("message %q", ge.Message)
			}
			failed++
		}
	}
	// 20% of 400: mean 80, sd 8; the bounds are ±5 sd.
	if failed < 40 || failed > 120 {
		t.Errorf("%d of %d calls failed, want about 20%%", failed, calls)
	}
	if got := e.s.Counts()[attachMethod]; got != calls {
		t.Errorf("count = %d, want %d", got, calls)
	}
	// Other methods are unaffected.
	if _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); err != nil {
		t.Error(err)
	}
}

func TestFaultCountAndLatency(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.s.InjectFault(fakegce.Fault{Method: "compute.zones.list", Code: 503, Count: 2})
	e.s.InjectFault(fakegce.Fault{Method: "compute.zones.get", Code: 403, Reason: "rateLimitExceeded", Message: "slow down"})
	for i := 0; i < 2; i++ {
		_, err := e.svc.Zones.List(project).Do()
		wantAPIError(t, err, 503, "backendError")
	}
	if _, err := e.svc.Zones.List(project).Do(); err != nil {
		t.Errorf("third call: %v", err)
	}
	_, err := e.svc.Zones.Get(project, zoneA).Do()
	if ge := wantAPIError(t, err, 403, "rateLimitExceeded"); ge.Message != "slow down" {
		t.Errorf("message %q", ge.Message)
	}
	if f := e.s.Faults(); len(f) != 1 || f[0].Method != "compute.zones.get" {
		t.Errorf("faults left = %+v", f)
	}
	e.s.ClearFaults()
	e.s.InjectFault(fakegce.Fault{Method: "*", Latency: 200 * time.Millisecond, Count: 1})
	start := time.Now()
	if _, err := e.svc.Zones.Get(project, zoneA).Do(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("latency fault: call took %v", el)
	}
	for _, bad := range []fakegce.Fault{{}, {Method: "zones.get", Code: 500}, {Method: "*"}, {Method: "*", Code: 200}, {Method: "*", Code: 500, Rate: 2}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) did not panic", bad)
				}
			}()
			e.s.InjectFault(bad)
		}()
	}
}

func TestCountsAndRequestLog(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.insertNEG(zoneA, "web")
	const rid = "9f1c2b3a-4d5e-4f60-8a7b-1c2d3e4f5a6b"
	op, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 80)}}).RequestId(rid).Do()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ZoneOperations.Wait(project, zoneA, op.Name).Do(); err != nil {
		t.Fatal(err)
	}
	c := e.s.Counts()
	for m, want := range map[string]int{
		"compute.networkEndpointGroups.insert": 1, "compute.networkEndpointGroups.get": 1,
		attachMethod: 1, "compute.zoneOperations.wait": 1,
	} {
		if c[m] != want {
			t.Errorf("count[%s] = %d, want %d (all: %v)", m, c[m], want, c)
		}
	}
	var rec *fakegce.RequestRecord
	for _, r := range e.s.Requests() {
		if r.Method == attachMethod {
			rec = &r
		}
	}
	if rec == nil || rec.RequestID != rid || rec.HTTPMethod != "POST" || rec.Status != 200 || rec.Authorization != "" ||
		rec.Path != "/compute/v1/projects/test-project/zones/us-central1-a/networkEndpointGroups/web/attachNetworkEndpoints" ||
		!strings.Contains(rec.Query, "requestId="+rid) {
		t.Errorf("record = %+v", rec)
	}
	e.s.ResetCounts()
	e.s.ResetRequests()
	if len(e.s.Counts()) != 0 || len(e.s.Requests()) != 0 {
		t.Error("reset did not reset")
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	e := newEnv(t, fakegce.Config{RequestLogSize: 3})
	for i := 0; i < 5; i++ {
		if _, err := e.svc.Zones.Get(project, zoneA).Do(); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.s.Requests()); got != 3 {
		t.Errorf("log has %d entries, want 3", got)
	}
	if got := e.s.Counts()["compute.zones.get"]; got != 5 {
		t.Errorf("count %d, want 5", got)
	}
}

func TestAdminHTTP(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	post := func(path, body string) (int, string) {
		resp, b := httpDo(t, http.MethodPost, e.base+path, body, map[string]string{"Content-Type": "application/json"})
		return resp.StatusCode, b
	}
	if code, body := post("/admin/instances", `{"zone":"us-central1-a","name":"node-1","ip":"10.128.0.9","aliasCIDRs":["10.4.1.0/24"]}`); code != 200 {
		t.Fatalf("add instance: %d %s", code, body)
	}
	e.insertNEG(zoneA, "web")
	e.attach(zoneA, "web", ep("node-1", "10.4.1.7", 8080))
	if code, body := post("/admin/health", `{"zone":"us-central1-a","neg":"web","instance":"node-1","ipAddress":"10.4.1.7","port":8080,"state":"DRAINING"}`); code != 200 {
		t.Fatalf("force health: %d %s", code, body)
	}
	if code, _ := post("/admin/health", `{"zone":"us-central1-a","neg":"web","state":"SICK"}`); code != 400 {
		t.Errorf("bad health state accepted: %d", code)
	}
	if code, body := post("/admin/faults", `{"method":"compute.zones.list","code":429,"count":1,"latency":"10ms"}`); code != 200 {
		t.Fatalf("inject fault: %d %s", code, body)
	}
	if code, _ := post("/admin/faults", `{"method":"compute.zones.list"}`); code != 400 {
		t.Errorf("empty fault accepted: %d", code)
	}
	_, body := httpDo(t, http.MethodGet, e.base+"/admin/faults", "", nil)
	var faults []fakegce.Fault
	if err := json.Unmarshal([]byte(body), &faults); err != nil || len(faults) != 1 || faults[0].Latency != 10*time.Millisecond || faults[0].Code != 429 {
		t.Errorf("faults = %s (%v)", body, err)
	}
	_, err := e.svc.Zones.List(project).Do()
	wantAPIError(t, err, 429, "rateLimitExceeded")

	_, body = httpDo(t, http.MethodGet, e.base+"/admin/counts", "", nil)
	var counts map[string]int
	if err := json.Unmarshal([]byte(body), &counts); err != nil || counts["compute.zones.list"] != 1 {
		t.Errorf("counts = %s", body)
	}
	_, body = httpDo(t, http.MethodGet, e.base+"/admin/requests", "", nil)
	var reqs []fakegce.RequestRecord
	if err := json.Unmarshal([]byte(body), &reqs); err != nil || len(reqs) == 0 {
		t.Errorf("requests = %s", body)
	}
	_, body = httpDo(t, http.MethodGet, e.base+"/admin/state", "", nil)
	var st fakegce.StateDump
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Project != project || len(st.Instances) != 1 || len(st.NEGs) != 1 || st.NEGs[0].NEG.Size != 1 ||
		len(st.NEGs[0].Endpoints) != 1 || st.NEGs[0].Endpoints[0].ForcedHealth != "DRAINING" || len(st.Networks) != 1 {
		t.Errorf("state = %s", body)
	}
	for _, path := range []string{"/admin/counts", "/admin/requests", "/admin/faults"} {
		if resp, _ := httpDo(t, http.MethodDelete, e.base+path, "", nil); resp.StatusCode != 200 {
			t.Errorf("DELETE %s: %d", path, resp.StatusCode)
		}
	}
	if len(e.s.Faults()) != 0 || len(e.s.Counts()) != 0 {
		t.Error("DELETE did not clear")
	}
	if resp, body := httpDo(t, http.MethodGet, e.base+"/admin/nope", "", nil); resp.StatusCode != 404 || !strings.Contains(body, "/admin/nope") {
		t.Errorf("unknown admin route: %d %s", resp.StatusCode, body)
	}
	if _, body := httpDo(t, http.MethodGet, e.base+"/admin/healthz", "", nil); !strings.Contains(body, "ok") {
		t.Errorf("healthz: %s", body)
	}
	got, _ := e.s.NEGEndpoints(zoneA, "web")
	if len(got) != 1 || got[0] != (neg.Endpoint{Instance: "node-1", IP: "10.4.1.7", Port: 8080}) {
		t.Errorf("endpoints = %v", got)
	}
}
