package fakegce_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// fakeClock is an injectable clock for quota windows.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// at is 10:MM:SS.mmm on a fixed day.
func at(clock string) time.Time {
	t, err := time.Parse("15:04:05.000", clock)
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 1, 2, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func TestQuotaGroupEveryRoute(t *testing.T) {
	s := fakegce.New(fakegce.Config{})
	defer s.Close()
	served := s.Methods()
	if len(served) < 50 {
		t.Fatalf("only %d methods registered: %v", len(served), served)
	}
	table := fakegce.QuotaTable()
	for _, m := range served {
		if _, ok := fakegce.QuotaGroupOf(m); !ok {
			t.Errorf("method %s is served but has no quota group in methodQuota (quota.go)", m)
		}
		delete(table, m)
	}
	for m := range table {
		t.Errorf("methodQuota names %s, which the server does not serve", m)
	}
}

func TestQuotaGroupOf(t *testing.T) {
	for _, tc := range []struct{ method, group string }{
		{"compute.networkEndpointGroups.insert", fakegce.QuotaDefault},
		{"compute.networkEndpointGroups.delete", fakegce.QuotaDefault},
		{"compute.networkEndpointGroups.attachNetworkEndpoints", fakegce.QuotaDefault},
		{"compute.networkEndpointGroups.detachNetworkEndpoints", fakegce.QuotaDefault},
		{"compute.backendServices.patch", fakegce.QuotaDefault},
		{"compute.regionBackendServices.update", fakegce.QuotaDefault},
		{"compute.healthChecks.insert", fakegce.QuotaDefault},
		{"compute.networkEndpointGroups.get", fakegce.QuotaReadRequests},
		{"compute.backendServices.get", fakegce.QuotaReadRequests},
		{"compute.backendServices.getHealth", fakegce.QuotaReadRequests},
		{"compute.instances.get", fakegce.QuotaReadRequests},
		{"compute.zones.list", fakegce.QuotaListRequests},
		{"compute.instances.list", fakegce.QuotaListRequests},
		{"compute.networkEndpointGroups.aggregatedList", fakegce.QuotaListRequests},
		{"compute.networkEndpointGroups.listNetworkEndpoints", fakegce.QuotaListRequests},
		{"compute.zoneOperations.get", fakegce.QuotaOperationReadRequests},
		{"compute.zoneOperations.wait", fakegce.QuotaOperationReadRequests},
		{"compute.globalOperations.wait", fakegce.QuotaOperationReadRequests},
	} {
		if g, ok := fakegce.QuotaGroupOf(tc.method); !ok || g != tc.group {
			t.Errorf("QuotaGroupOf(%s) = %q, %v; want %q", tc.method, g, ok, tc.group)
		}
	}
	if _, ok := fakegce.QuotaGroupOf("compute.nope.get"); ok {
		t.Error("unknown method has a group")
	}
}

func TestParseQuotaLimits(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]int
		wantErr string
	}{
		{in: "", want: map[string]int{}},
		{in: "default=3000", want: map[string]int{"default": 3000}},
		{in: " default=10 , read_requests=20,list_requests=30,operation_read_requests=40", want: map[string]int{
			"default": 10, "read_requests": 20, "list_requests": 30, "operation_read_requests": 40}},
		{in: "queries=5", wantErr: `quota group "queries"`},
		{in: "default=0", wantErr: "at least 1"},
		{in: "default", wantErr: "want group=requestsPerMinute"},
		{in: "default=x", wantErr: "want group=requestsPerMinute"},
	} {
		got, err := fakegce.ParseQuotaLimits(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q: %s=%d, want %d", tc.in, k, got[k], v)
			}
		}
	}
	if err := (fakegce.Config{Quota: &fakegce.QuotaConfig{Limits: map[string]int{"reads": 1}}}).Validate(); err == nil {
		t.Error("Config with an unknown quota group validated")
	}
}

// TestQuotaWindows walks the fixed one-minute windows with a fake clock: default (Queries)
// limit 3, read requests 2, list requests the documented 1,500.
func TestQuotaWindows(t *testing.T) {
	clk := &fakeClock{t: at("10:00:00.000")}
	e := newEnv(t, fakegce.Config{Quota: &fakegce.QuotaConfig{
		Limits: map[string]int{fakegce.QuotaDefault: 3, fakegce.QuotaReadRequests: 2},
		Now:    clk.Now,
	}})
	insert := func(name string) error {
		_, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{
			Name: name, NetworkEndpointType: "GCE_VM_IP_PORT", DefaultPort: 80}).Do()
		return err
	}
	get := func(string) error { _, err := e.svc.Zones.Get(project, zoneA).Do(); return err }
	list := func(string) error { _, err := e.svc.Zones.List(project).Do(); return err }
	steps := []struct {
		clock string
		call  func(string) error
		name  string
		want  int // 0 = allowed, else HTTP status
	}{
		{"10:00:00.000", insert, "n1", 0},
		{"10:00:10.000", insert, "n2", 0},
		{"10:00:15.000", insert, "n3", 0}, // limit reached at :15
		{"10:00:15.000", insert, "n4", 403},
		{"10:00:15.000", get, "", 0}, // groups are independent
		{"10:00:30.000", get, "", 0},
		{"10:00:31.000", get, "", 403},
		{"10:00:40.000", list, "", 0},
		{"10:00:59.999", insert, "n5", 403}, // still the same window
		{"10:01:00.000", insert, "n6", 0},   // refilled at the start of the next minute
		{"10:01:00.000", get, "", 0},
		{"10:01:30.000", insert, "n7", 0},
		{"10:01:59.000", insert, "n8", 0},
		{"10:01:59.500", insert, "n9", 403}, // exactly 3 per window
		{"10:03:00.000", insert, "n10", 0},  // a window later still starts empty
	}
	for i, st := range steps {
		clk.set(at(st.clock))
		err := st.call(st.name)
		if st.want == 0 {
			if err != nil {
				t.Fatalf("step %d at %s: %v, want allowed", i, st.clock, err)
			}
			continue
		}
		wantAPIError(t, err, st.want, "rateLimitExceeded")
	}
	// Rejected inserts were not applied.
	for _, n := range []string{"n4", "n5", "n9"} {
		if _, ok := e.s.NEGEndpoints(zoneA, n); ok {
			t.Errorf("NEG %s exists though its insert was rejected", n)
		}
	}
	for _, n := range []string{"n1", "n3", "n6", "n10"} {
		if _, ok := e.s.NEGEndpoints(zoneA, n); !ok {
			t.Errorf("NEG %s missing", n)
		}
	}
	clk.set(at("10:03:20.000"))
	u := e.s.Quota()
	if !u.Enabled || !u.WindowStart.Equal(at("10:03:00.000")) {
		t.Fatalf("usage %+v, want enabled, window 10:03", u)
	}
	want := map[string]fakegce.QuotaGroupUsage{
		"default":                 {LimitPerMinute: 3, Used: 1, TotalAllowed: 7, TotalRejected: 3, PeakPerMinute: 3, WindowsLimited: 2},
		"read_requests":           {LimitPerMinute: 2, Used: 0, TotalAllowed: 3, TotalRejected: 1, PeakPerMinute: 2, WindowsLimited: 1},
		"list_requests":           {LimitPerMinute: 1500, TotalAllowed: 1, PeakPerMinute: 1},
		"operation_read_requests": {LimitPerMinute: 1500},
	}
	e.s.ResetQuotaTotals()
	if g := e.s.Quota().Groups[0]; g.Used != 1 || g.TotalAllowed != 0 || g.PeakPerMinute != 1 || g.WindowsLimited != 0 {
		t.Errorf("after ResetQuotaTotals: %+v", g)
	}
	for _, g := range u.Groups {
		w := want[g.Group]
		w.Group, w.Metric = g.Group, "compute.googleapis.com/"+g.Group
		if g != w {
			t.Errorf("group %s: %+v, want %+v", g.Group, g, w)
		}
	}
}

// TestQuotaError checks what a compute/v1 client sees over the limit.
func TestQuotaError(t *testing.T) {
	clk := &fakeClock{t: at("10:00:00.000")}
	e := newEnv(t, fakegce.Config{Quota: &fakegce.QuotaConfig{Limits: map[string]int{"list_requests": 1}, Now: clk.Now}})
	if _, err := e.svc.Zones.List(project).Do(); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Zones.List(project).Do()
	ge := wantAPIError(t, err, http.StatusForbidden, "rateLimitExceeded")
	wantMsg := "Quota exceeded for quota metric 'List requests' and limit 'List requests per minute' of service " +
		"'compute.googleapis.com' for consumer 'project_number:123456789'."
	if ge.Message != wantMsg || ge.Errors[0].Message != wantMsg {
		t.Errorf("message %q, want %q", ge.Message, wantMsg)
	}
	if !strings.HasSuffix(ge.Error(), ", rateLimitExceeded") {
		t.Errorf("Error() = %q", ge.Error())
	}
	var body struct {
		Error struct {
			Errors  []struct{ Domain string }
			Details []struct {
				Type     string `json:"@type"`
				Reason   string
				Metadata map[string]string
			}
		}
	}
	if err := json.Unmarshal([]byte(ge.Body), &body); err != nil {
		t.Fatal(err)
	}
	if d := body.Error.Errors[0].Domain; d != "usageLimits" {
		t.Errorf("domain %q, want usageLimits", d)
	}
	if len(body.Error.Details) != 1 || body.Error.Details[0].Reason != "RATE_LIMIT_EXCEEDED" ||
		body.Error.Details[0].Metadata["quota_metric"] != "compute.googleapis.com/list_requests" ||
		body.Error.Details[0].Metadata["quota_limit_value"] != "1" {
		t.Errorf("details %+v", body.Error.Details)
	}
	rec := e.s.Requests()
	if last := rec[len(rec)-1]; last.Status != http.StatusForbidden || last.Method != "compute.zones.list" {
		t.Errorf("request log: %+v", last)
	}
}

func TestQuotaOffByDefault(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	for range 5 {
		if _, err := e.svc.Zones.Get(project, zoneA).Do(); err != nil {
			t.Fatal(err)
		}
	}
	if u := e.s.Quota(); u.Enabled || len(u.Groups) != 0 {
		t.Errorf("quota off: %+v", u)
	}
	if e.s.State().Quota != nil {
		t.Error("state shows a quota while off")
	}
}

func TestQuotaAdmin(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	for _, tc := range []struct {
		method, body string
		code         int
		want         string
	}{
		{"GET", "", 200, `"enabled":false`},
		{"POST", `{"limits":{"read_requests":1}}`, 200, `"group":"read_requests","metric":"compute.googleapis.com/read_requests","limitPerMinute":1`},
		{"GET", "", 200, `"group":"default","metric":"compute.googleapis.com/default","limitPerMinute":1500`},
		{"POST", `{"limits":{"reads":1}}`, 400, `quota group \"reads\"`},
		{"POST", `{"limits":{"default":0}}`, 400, "at least 1"},
	} {
		resp, body := httpDo(t, tc.method, e.base+"/admin/quota", tc.body, nil)
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s; want %d containing %s", tc.method, tc.body, resp.StatusCode, body, tc.code, tc.want)
		}
	}
	// The POSTed read limit of 1 is in force (the failed POSTs changed nothing).
	if _, err := e.svc.Zones.Get(project, zoneA).Do(); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Zones.Get(project, zoneA).Do()
	wantAPIError(t, err, http.StatusForbidden, "rateLimitExceeded")
	if q := e.s.State().Quota; q == nil || q.Groups[1].TotalRejected != 1 {
		t.Errorf("state quota %+v", q)
	}
	resp, body := httpDo(t, "DELETE", e.base+"/admin/quota", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"enabled":false`) {
		t.Errorf("DELETE: %d %s", resp.StatusCode, body)
	}
	if _, err := e.svc.Zones.Get(project, zoneA).Do(); err != nil {
		t.Errorf("quota off, still: %v", err)
	}
}
