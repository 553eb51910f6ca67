package app

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	negready "github.com/neg-controller/neg-controller/pkg/readiness"
)

// recorder is a Registerer that notes every metric registered and its labels.
type recorder struct {
	prometheus.Registerer
	labels map[string][]string
}

var descPattern = regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := descPattern.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		var ls []string
		if m[2] != "" {
			ls = strings.Split(m[2], ",")
		}
		r.labels[m[1]] = ls
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// registeredMetrics returns every metric a run registers (what startObservability and
// startReadiness register) with its labels; Go and process collectors aside.
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	rec := &recorder{Registerer: prometheus.NewRegistry(), labels: map[string][]string{}}
	m := registerMetrics(rec)
	_, ctx := ktesting.NewTestContext(t)
	_, base := fakegce.NewTestServer(t, fakegce.Config{Project: "p", Region: "us-central1"})
	cloud, err := gce.New(ctx, gce.Config{Project: "p", Region: "us-central1", Endpoint: base, WithoutAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset()
	if _, err := negready.New(negready.Config{KubeClient: kube, EventClient: kube, Cloud: cloud,
		Informers: informers.NewSharedInformerFactory(kube, 0), Timeout: negready.DefaultTimeout,
		WithoutHealthCheck: negready.WithoutHealthCheckWait, QueueMetrics: m.QueueProvider(),
		Metrics: negready.NewMetrics(rec), Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	for name := range rec.labels {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			delete(rec.labels, name)
		}
	}
	return rec.labels
}

// readmeMetricRows returns the rows of README's metric tables: metric name → the row.
func readmeMetricRows(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(b), "\n### Metrics\n")
	end := strings.Index(string(b), "\n### Alerts worth setting\n")
	if start < 0 || end < start {
		t.Fatal(`README.md has no "### Metrics" section before "### Alerts worth setting"`)
	}
	rows := map[string]string{}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for _, line := range strings.Split(string(b)[start:end], "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			rows[m[1]] = line
		}
	}
	return rows
}

// TestEveryMetricDocumented: README's metric tables list every metric the binary registers,
// each with all its labels, and nothing else.
func TestEveryMetricDocumented(t *testing.T) {
	registered, rows := registeredMetrics(t), readmeMetricRows(t)
	if len(registered) < 30 {
		t.Fatalf("only %d metrics registered: %v", len(registered), registered)
	}
	var names []string
	for n := range registered {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r, ok := rows[n]
		if !ok {
			t.Errorf("metric %s (labels %v) is not in README's Metrics tables", n, registered[n])
			continue
		}
		cells := strings.Split(r, "|")
		if len(cells) < 4 {
			t.Errorf("README row of %s has no labels column: %s", n, r)
			continue
		}
		for _, l := range registered[n] {
			if !strings.Contains(cells[3], "`"+l+"`") {
				t.Errorf("README row of %s does not name its label %q: %s", n, l, r)
			}
		}
	}
	for n := range rows {
		if _, ok := registered[n]; !ok {
			t.Errorf("README documents %s, which the binary does not register", n)
		}
	}
}
