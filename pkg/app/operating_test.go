package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

func TestOperatingFlags(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	args := []string{"--leader-elect=false", "--leader-elect-namespace=neg", "--leader-elect-name=lease",
		"--leader-elect-lease-duration=4s", "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=1s",
		"--metrics-bind-address=127.0.0.1:9090", "--enable-pprof", "--logging-format=json",
		"--gce-rate-limit=attach=10:20,detach=0:1", "--dry-run", "--gce-mutations-per-minute=600",
		"--gce-reads-per-minute=0", "--gce-lists-per-minute=120", "--gce-operation-reads-per-minute=3000"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := LeaderElectionOptions{Enabled: false, Namespace: "neg", Name: "lease",
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: time.Second}
	if o.LeaderElection != want {
		t.Errorf("leader election %+v, want %+v", o.LeaderElection, want)
	}
	if o.MetricsBindAddress != "127.0.0.1:9090" || !o.EnablePprof || o.Logging.Format != "json" || !o.DryRun ||
		o.GCERateLimits != "attach=10:20,detach=0:1" {
		t.Errorf("parsed %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	limits := o.effectiveRateLimits()
	wantCaps := map[string]gce.RateLimit{gce.GroupAttach: {QPS: 10, Burst: 20}, gce.GroupDetach: {QPS: 0, Burst: 1}}
	if diff := cmp.Diff(wantCaps, limits); diff != "" {
		t.Errorf("caps (-want +got):\n%s", diff)
	}
	wantBudgets := map[string]int{gce.BudgetMutations: 600, gce.BudgetReads: 0, gce.BudgetLists: 120, gce.BudgetOperationReads: 3000}
	if diff := cmp.Diff(wantBudgets, o.GCEBudgets.byName()); diff != "" {
		t.Errorf("budgets (-want +got):\n%s", diff)
	}

	d := NewOptions()
	if !d.LeaderElection.Enabled || d.LeaderElection.Name != "neg-controller" || d.MetricsBindAddress != ":8080" ||
		d.LeaderElection.LeaseDuration != 15*time.Second || d.LeaderElection.RenewDeadline != 10*time.Second ||
		d.LeaderElection.RetryPeriod != 2*time.Second || d.Logging.Format != "text" || d.DryRun || d.EnablePprof ||
		d.GCEBudgets != (GCEBudgets{Mutations: 1500, Reads: 1500, Lists: 1500, OperationReads: 1500}) {
		t.Errorf("defaults %+v", d)
	}
}

func TestOperatingValidate(t *testing.T) {
	cases := map[string]func(o *Options){
		"lease name":          func(o *Options) { o.LeaderElection.Name = "Bad Name" },
		"lease namespace":     func(o *Options) { o.LeaderElection.Namespace = "Bad_NS" },
		"lease ≤ renew":       func(o *Options) { o.LeaderElection.LeaseDuration = 10 * time.Second },
		"renew ≤ 1.2×retry":   func(o *Options) { o.LeaderElection.RenewDeadline = 2 * time.Second },
		"retry 0":             func(o *Options) { o.LeaderElection.RetryPeriod = 0 },
		"metrics address":     func(o *Options) { o.MetricsBindAddress = "8080" },
		"health address":      func(o *Options) { o.HealthProbeBindAddress = "8081" },
		"pprof not loopback":  func(o *Options) { o.EnablePprof, o.PprofBindAddress = true, ":6060" },
		"pprof on all IPs":    func(o *Options) { o.EnablePprof, o.PprofBindAddress = true, "0.0.0.0:6060" },
		"log format":          func(o *Options) { o.Logging.Format = "xml" },
		"log flush frequency": func(o *Options) { o.Logging.FlushFrequency.Duration.Duration = 0 },
		"rate limit":          func(o *Options) { o.GCERateLimits = "attach=fast" },
		"rate limit (group)":  func(o *Options) { o.GCERateLimits = "bogus=1:1" },
		"mutation budget":     func(o *Options) { o.GCEBudgets.Mutations = -1 },
	}
	for name, mutate := range cases {
		o := NewOptions()
		mutate(o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: invalid value accepted", name)
		}
	}
	// Without leader election its settings are not checked; "0" disables the server.
	o := NewOptions()
	o.LeaderElection = LeaderElectionOptions{Enabled: false}
	o.MetricsBindAddress = "0"
	if err := o.Validate(); err != nil {
		t.Errorf("leader election off: %v", err)
	}
}

func TestParseRateLimits(t *testing.T) {
	ok := map[string]map[string]gce.RateLimit{
		"":                               {},
		"attach=15:30":                   {"attach": {QPS: 15, Burst: 30}},
		" attach = 2.5:3 , listNEGs=0:1": {"attach": {QPS: 2.5, Burst: 3}, "listNEGs": {QPS: 0, Burst: 1}},
	}
	for in, want := range ok {
		got, err := ParseRateLimits(in)
		if err != nil || len(got) != len(want) {
			t.Errorf("%q: %v %v", in, got, err)
			continue
		}
		for g, rl := range want {
			if got[g] != rl {
				t.Errorf("%q: %s = %+v, want %+v", in, g, got[g], rl)
			}
		}
	}
	bad := map[string]string{
		"attach":                "group=qps:burst",
		"attach=15":             "group=qps:burst",
		"nope=1:1":              "unknown group",
		"attach=-1:1":           "≥ 0",
		"attach=1:0":            "≥ 1",
		"attach=1:1,attach=2:2": "twice",
		"attach=NaN:1":          "≥ 0",
	}
	for in, msg := range bad {
		if _, err := ParseRateLimits(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want one mentioning %q", in, err, msg)
		}
	}
}

func TestLeaseNamespace(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	l := DefaultLeaderElection()
	if ns := l.leaseNamespace(); ns == "" { // kube-system, or the service account's outside tests
		t.Errorf("default namespace %q", ns)
	}
	t.Setenv("POD_NAMESPACE", "neg-system")
	if ns := l.leaseNamespace(); ns != "neg-system" {
		t.Errorf("from POD_NAMESPACE: %q", ns)
	}
	l.Namespace = "explicit"
	if ns := l.leaseNamespace(); ns != "explicit" {
		t.Errorf("explicit: %q", ns)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	for _, pprof := range []bool{false, true} {
		o := NewOptions()
		o.MetricsBindAddress, o.EnablePprof, o.PprofBindAddress = "127.0.0.1:0", pprof, "127.0.0.1:0"
		obs, err := startObservability(ctx, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + obs.addr.String()
		if code, _ := get(t, base+"/healthz"); code != 200 {
			t.Errorf("/healthz = %d", code)
		}
		if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "not synced") {
			t.Errorf("/readyz before sync = %d %q", code, body)
		}
		synced := false
		obs.ready.set(func() bool { return synced }, nil)
		if code, _ := get(t, base+"/readyz"); code != 503 {
			t.Errorf("/readyz unsynced = %d", code)
		}
		synced = true
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Errorf("/readyz synced = %d", code)
		}
		obs.ready.set(func() bool { return true }, func(*http.Request) error { return io.ErrUnexpectedEOF })
		if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "leader election") {
			t.Errorf("/readyz with a failing leader check = %d %q", code, body)
		}
		obs.metrics.ObserveDryRun("networkEndpointGroups.insert")
		code, body := get(t, base+"/metrics")
		for _, want := range []string{`neg_controller_dry_run_mutations_total{method="networkEndpointGroups.insert"} 1`,
			"go_goroutines", "process_start_time_seconds", "neg_controller_build_info{commit="} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics = %d, missing %q", code, want)
			}
		}
		// pprof is never on the metrics server, only on its own loopback server.
		if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
			t.Errorf("pprof %v: /debug/pprof/ on the metrics server = %d, want 404", pprof, code)
		}
		if got := obs.pprofAddr != nil; got != pprof {
			t.Errorf("pprof %v: pprof server running: %v", pprof, got)
		} else if pprof {
			if code, _ := get(t, "http://"+obs.pprofAddr.String()+"/debug/pprof/"); code != 200 {
				t.Errorf("/debug/pprof/ on the pprof server = %d", code)
			}
		}
		obs.stop()
		if _, err := http.Get(base + "/healthz"); err == nil {
			t.Error("server still serving after stop")
		}
	}

	// A taken port fails the start; "0" disables the server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := NewOptions()
	o.MetricsBindAddress = ln.Addr().String()
	if _, err := startObservability(ctx, o, nil); err == nil {
		t.Error("taken port accepted")
	}
	o.MetricsBindAddress = "0"
	obs, err := startObservability(ctx, o, nil)
	if err != nil || obs.addr != nil || obs.healthAddr != nil || obs.metrics == nil {
		t.Errorf("disabled server: %+v %v", obs, err)
	}
	obs.stop()
}

func TestDryRunKubeWrites(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.Method+" "+r.URL.RawQuery)
	}))
	defer srv.Close()
	client := &http.Client{Transport: dryRunKubeWrites(http.DefaultTransport)}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL+"/api/v1/namespaces/default/services/web?fieldManager=x", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	want := []string{"GET fieldManager=x", "POST dryRun=All&fieldManager=x", "PATCH dryRun=All&fieldManager=x",
		"PUT dryRun=All&fieldManager=x", "DELETE dryRun=All&fieldManager=x"}
	if strings.Join(queries, "|") != strings.Join(want, "|") {
		t.Errorf("queries %q, want %q", queries, want)
	}
}

// TestRunWithClientsDryRun: with --dry-run the controller goes through creating the NEG and
// attaching the endpoint — counted on /metrics — while GCE receives no mutation at all.
func TestRunWithClientsDryRun(t *testing.T) {
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: "p", Region: "us-central1"})
	if err := srv.AddInstance("us-central1-a", fakegce.InstanceSpec{Name: "node-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset(append([]runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: types.UID("cluster-uid-1")}},
	}, webService("10.8.0.5")...)...)
	t.Setenv("GCE_METADATA_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := NewOptions()
	o.Project, o.Region, o.GCEEndpoint, o.NamingUID = "p", "us-central1", base, "0123456789abcdef"
	o.GCEOperationPollInterval = 10 * time.Millisecond
	o.DryRun, o.MetricsBindAddress, o.LeaderElection.Enabled = true, addr, false

	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- RunWithClients(ctx, o, Clients{Kube: kube, Events: kube}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("RunWithClients: %v", err)
		}
	}()

	want := []string{
		`neg_controller_dry_run_mutations_total{method="networkEndpointGroups.insert"} 1`,
		`neg_controller_dry_run_mutations_total{method="networkEndpointGroups.attachNetworkEndpoints"} 1`,
		`neg_controller_leader 1`,
		`neg_controller_gce_rate_limit_configured_qps{group="mutations"} 24.58`,
		`neg_controller_gce_rate_limit_qps{group="reads"} 24.58`,
		`neg_controller_gce_rate_limit_granted_total{group="lists"} `,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var body string
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	for m, n := range srv.Counts() {
		if strings.Contains(m, "insert") || strings.Contains(m, "attach") || strings.Contains(m, "detach") || strings.Contains(m, "delete") {
			t.Errorf("dry run sent %d %s request(s)", n, m)
		}
	}
}
