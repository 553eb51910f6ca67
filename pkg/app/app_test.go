package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
	"github.com/neg-controller/neg-controller/pkg/version"
)

func TestDefaultsAreValid(t *testing.T) {
	if err := NewOptions().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestFlags(t *testing.T) {
	o := NewOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	args := []string{"--kubeconfig=/k", "--project=p", "--region=europe-west4", "--network=net", "--subnetwork=sub",
		"--cluster-name=c", "--cluster-uid=abcdef0123456789", "--gce-endpoint=http://127.0.0.1:1234",
		"--concurrent-syncs=3", "--gce-max-in-flight=7", "--resync-period=1m", "--gc-period=30s",
		"--gce-operation-poll-interval=250ms", "--gce-call-timeout=5s", "--gce-operation-timeout=10m", "--enable-svcneg=false",
		"--sync-delay=50ms", "--neg-call-interval=2s", "--neg-quiet-period=300ms", "--neg-verify-period=3h",
		"--enable-autoneg=false", "--backend-service-allow=web-.*,us-central1/x"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	want := Options{Kubeconfig: "/k", KubeAPIQPS: o.KubeAPIQPS, KubeAPIBurst: o.KubeAPIBurst, Project: "p",
		Region: "europe-west4", Network: "net", Subnetwork: "sub", ClusterName: "c", NamingUID: "abcdef0123456789",
		GCEEndpoint: "http://127.0.0.1:1234", ConcurrentSyncs: 3, GCEMaxInFlight: 7, ResyncPeriod: time.Minute,
		NEGVerifyPeriod: 3 * time.Hour, GCPeriod: 30 * time.Second, GCEOperationPollInterval: 250 * time.Millisecond, GCECallTimeout: 5 * time.Second,
		GCEOperationTimeout: 10 * time.Minute, SyncDelay: 50 * time.Millisecond, NEGCallInterval: 2 * time.Second, NEGQuietPeriod: 300 * time.Millisecond, BackendServiceAllow: "web-.*,us-central1/x"}
	// The operating options keep their defaults here (operating_test.go parses them).
	want.LeaderElection, want.MetricsBindAddress, want.Logging = o.LeaderElection, o.MetricsBindAddress, o.Logging
	want.GCEBudgets, want.PprofBindAddress = o.GCEBudgets, o.PprofBindAddress
	want.Readiness = o.Readiness   // readiness_test.go parses them
	want.Hybrid = o.Hybrid         // hybrid_test.go parses them
	want.NEGBinding = o.NEGBinding // negbinding_test.go parses them
	want.DualStack = o.DualStack   // TestDualStackFlags parses them
	if *o != want {
		t.Errorf("parsed %+v\nwant   %+v", *o, want)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if len(f.Usage) < 20 {
			t.Errorf("flag --%s has no real help text", f.Name)
		}
	})
}

func TestValidate(t *testing.T) {
	cases := map[string]func(o *Options){
		"concurrent-syncs":  func(o *Options) { o.ConcurrentSyncs = 0 },
		"gce-max-in-flight": func(o *Options) { o.GCEMaxInFlight = 0 },
		"resync-period":     func(o *Options) { o.ResyncPeriod = -time.Second },
		"neg-verify-period": func(o *Options) { o.NEGVerifyPeriod = -time.Second },
		"gc-period":         func(o *Options) { o.GCPeriod = 0 },
		"poll-interval":     func(o *Options) { o.GCEOperationPollInterval = 0 },
		"gce-endpoint":      func(o *Options) { o.GCEEndpoint = "127.0.0.1:8085" },
		"region":            func(o *Options) { o.Region = "US Central" },
		"cluster-uid":       func(o *Options) { o.NamingUID = "Bad UID" },
		"kube-api-qps":      func(o *Options) { o.KubeAPIQPS = 0 },
		"gce-call-timeout":  func(o *Options) { o.GCECallTimeout = 0 },
		"op-timeout":        func(o *Options) { o.GCEOperationTimeout = 0 },
		"op-timeout <= poll": func(o *Options) {
			o.GCEOperationPollInterval, o.GCEOperationTimeout = time.Minute, time.Minute
		},
		"sync-delay":        func(o *Options) { o.SyncDelay = -time.Millisecond },
		"neg-call-interval": func(o *Options) { o.NEGCallInterval = -time.Second },
	}
	for name, mutate := range cases {
		o := NewOptions()
		mutate(o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: invalid value accepted", name)
		}
	}
}

// fakeMetadata answers from a map and counts calls.
type fakeMetadata struct {
	values map[string]string
	calls  int
}

func (f *fakeMetadata) get(key string) (string, error) {
	f.calls++
	if v, ok := f.values[key]; ok {
		return v, nil
	}
	return "", metadata.NotDefinedError(key)
}
func (f *fakeMetadata) ProjectIDWithContext(context.Context) (string, error) {
	return f.get("project/project-id")
}
func (f *fakeMetadata) ZoneWithContext(context.Context) (string, error) { return f.get("zone") }
func (f *fakeMetadata) InstanceAttributeValueWithContext(_ context.Context, a string) (string, error) {
	return f.get("instance/attributes/" + a)
}
func (f *fakeMetadata) GetWithContext(_ context.Context, s string) (string, error) { return f.get(s) }

func TestDiscover(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	md := &fakeMetadata{values: map[string]string{
		"project/project-id":                    "md-project",
		"zone":                                  "europe-west4-b",
		"instance/attributes/cluster-name":      "md-cluster",
		"instance/network-interfaces/0/network": "projects/42/networks/md-net",
	}}
	env, err := Discover(ctx, NewOptions(), md)
	if err != nil {
		t.Fatal(err)
	}
	want := Environment{Project: "md-project", Region: "europe-west4", Network: "md-net", ClusterName: "md-cluster"}
	if env != want {
		t.Errorf("from metadata: %+v, want %+v", env, want)
	}

	// Flags win, and nothing is asked for what they give.
	md.calls = 0
	o := NewOptions()
	o.Project, o.Region, o.Network, o.ClusterName, o.Subnetwork = "p", "r", "n", "c", "s"
	env, err = Discover(ctx, o, md)
	if err != nil || env != (Environment{Project: "p", Region: "r", Network: "n", Subnetwork: "s", ClusterName: "c"}) || md.calls != 0 {
		t.Errorf("with flags: %+v, %v, %d metadata calls", env, err, md.calls)
	}

	// Without metadata, project and region are required; network defaults to "default".
	if _, err := Discover(ctx, NewOptions(), nil); err == nil || !strings.Contains(err.Error(), "--project") {
		t.Errorf("missing project not reported: %v", err)
	}
	o = NewOptions()
	o.Project, o.Region = "p", "r"
	if env, err := Discover(ctx, o, nil); err != nil || env.Network != "default" {
		t.Errorf("defaults: %+v %v", env, err)
	}
}

func TestDiscoverFromFakeGCEMetadataServer(t *testing.T) {
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: "meta-project", Region: "asia-east1", ClusterName: "meta-cluster"})
	_ = srv
	u, _ := url.Parse(base)
	t.Setenv("GCE_METADATA_HOST", u.Host)
	_, ctx := ktesting.NewTestContext(t)
	if !needsMetadata(NewOptions()) || !onGCE(ctx) {
		t.Fatal("metadata server not detected")
	}
	env, err := Discover(ctx, NewOptions(), metadata.NewClient(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Environment{Project: "meta-project", Region: "asia-east1", Network: "default", ClusterName: "meta-cluster"}
	if env != want {
		t.Errorf("got %+v, want %+v", env, want)
	}
}

func TestNeedsMetadata(t *testing.T) {
	t.Setenv("GCE_METADATA_HOST", "")
	o := NewOptions()
	o.Project, o.Region = "p", "r"
	if needsMetadata(o) {
		t.Error("project and region given: the metadata server must not be probed")
	}
	o.Region = ""
	if !needsMetadata(o) {
		t.Error("region missing: the metadata server is needed")
	}
}

func TestGCEConfigAuth(t *testing.T) {
	env := Environment{Project: "p", Region: "r"}
	o := NewOptions()
	o.GCEEndpoint = "http://127.0.0.1:1"
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("GCE_METADATA_HOST", "")
	if !gceConfig(o, env).WithoutAuth {
		t.Error("endpoint without credentials must not authenticate")
	}
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:2")
	if gceConfig(o, env).WithoutAuth {
		t.Error("with a metadata server, credentials come from it")
	}
	o.GCEEndpoint = ""
	t.Setenv("GCE_METADATA_HOST", "")
	if gceConfig(o, env).WithoutAuth {
		t.Error("the real endpoint always authenticates")
	}
}

func TestGCEConfigTimings(t *testing.T) {
	o := NewOptions()
	o.GCECallTimeout, o.GCEOperationPollInterval, o.GCEOperationTimeout = 7*time.Second, 3*time.Second, 11*time.Minute
	c := gceConfig(o, Environment{Project: "p", Region: "r"})
	if c.CallTimeout != 7*time.Second || c.OperationPollInterval != 3*time.Second || c.OperationTimeout != 11*time.Minute {
		t.Errorf("gceConfig timings = call %s, poll %s, operation %s; want 7s, 3s, 11m",
			c.CallTimeout, c.OperationPollInterval, c.OperationTimeout)
	}
}

func TestClusterUID(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	if _, err := ClusterUID(ctx, fake.NewClientset()); err == nil {
		t.Error("missing kube-system accepted")
	}
	kube := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "ks-uid"}})
	if uid, err := ClusterUID(ctx, kube); err != nil || uid != "ks-uid" {
		t.Errorf("got %q %v", uid, err)
	}
}

func TestRestConfig(t *testing.T) {
	if _, err := restConfig("/does/not/exist"); err == nil {
		t.Error("missing kubeconfig accepted")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", "")
	if _, err := restConfig(""); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("outside a cluster without kubeconfig: %v", err)
	}
}

// TestRunWithClients runs the whole wiring against a fake Kubernetes API and the emulator,
// with flags only (no metadata server), and checks a Service gets its NEG.
func TestRunWithClients(t *testing.T) {
	srv, base := fakegce.NewTestServer(t, fakegce.Config{Project: "p", Region: "us-central1"})
	if err := srv.AddInstance("us-central1-a", fakegce.InstanceSpec{Name: "node-1", AliasCIDRs: []string{"10.8.0.0/24"}}); err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset(append([]runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: types.UID("cluster-uid-1")}},
	}, webService("10.8.0.5")...)...)
	t.Setenv("GCE_METADATA_HOST", "")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	o := NewOptions()
	o.Project, o.Region, o.GCEEndpoint, o.NamingUID = "p", "us-central1", base, "0123456789abcdef"
	o.GCEOperationPollInterval = 10 * time.Millisecond
	o.MetricsBindAddress = "127.0.0.1:0" // leader election stays on, against the fake API
	o.Readiness.BindAddress = "127.0.0.1:0"

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

	name := naming.NewNamer("0123456789abcdef").NEGName("default", "web", 80)
	deadline := time.Now().Add(30 * time.Second)
	for {
		eps, ok := srv.NEGEndpoints("us-central1-a", name)
		if ok && len(eps) == 1 && eps[0].IP == "10.8.0.5" && eps[0].Port == 8080 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("NEG %s not synced: %v %v", name, eps, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
	svc, err := kube.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"network_endpoint_groups":{"80":%q},"zones":["us-central1-a"]}`, name)
	if got := svc.Annotations[annotation.NEGStatusKey]; got != want {
		t.Errorf("neg-status %s, want %s", got, want)
	}
	for _, r := range srv.Requests() {
		if r.Authorization != "" {
			t.Errorf("request sent credentials: %s %s", r.Method, r.Authorization)
			break
		}
	}
}

// TestGCEUserAgent: every Compute Engine request names this build in its user agent (GCE
// records it in the project's audit logs).
func TestGCEUserAgent(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("User-Agent"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"items":[{"name":"us-central1-a","region":"https://x/regions/us-central1"}]}`))
	}))
	defer srv.Close()
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("GCE_METADATA_HOST", "")
	o := NewOptions()
	o.GCEEndpoint = srv.URL
	_, ctx := ktesting.NewTestContext(t)
	cloud, err := gce.New(ctx, gceConfig(o, Environment{Project: "p", Region: "us-central1"}))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = cloud.ListZones(ctx)
	ua, _ := got.Load().(string)
	want := version.Get().UserAgent()
	if !strings.Contains(ua, want) || !strings.HasPrefix(want, "neg-controller/") {
		t.Errorf("User-Agent %q does not contain %q", ua, want)
	}
}

func TestDualStackFlags(t *testing.T) {
	o := NewOptions()
	if !o.DualStack.Enable || o.DualStack.IPv6Only || o.DualStack.migrationPause() != 10*time.Second {
		t.Errorf("defaults = %+v, want dual-stack on, IPv6-only off, 10s pause", o.DualStack)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--enable-dual-stack-neg=false", "--enable-ipv6-only-neg", "--dual-stack-migration-pause=0"}); err != nil {
		t.Fatal(err)
	}
	if want := (DualStackOptions{IPv6Only: true}); o.DualStack != want {
		t.Errorf("parsed %+v, want %+v", o.DualStack, want)
	}
	if p := o.DualStack.migrationPause(); p >= 0 {
		t.Errorf("migrationPause() = %v for --dual-stack-migration-pause=0, want negative (no pause for negsync)", p)
	}
	o.DualStack.MigrationPause = -time.Second
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--dual-stack-migration-pause") {
		t.Errorf("Validate with a negative pause = %v, want an error naming the flag", err)
	}
}
