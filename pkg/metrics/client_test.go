package metrics

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRESTClientAdapters(t *testing.T) {
	c := NewRESTClient()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c.Collectors()...)
	// A collector may be registered with a second registry (one per RunWithClients).
	prometheus.NewRegistry().MustRegister(c.Collectors()...)
	opts := c.RegisterOpts()
	opts.RequestResult.Increment(context.Background(), "200", "GET", "10.0.0.1:443")
	opts.RequestResult.Increment(context.Background(), "200", "GET", "10.0.0.1:443")
	opts.RequestLatency.Observe(context.Background(), "GET", url.URL{Scheme: "https", Host: "10.0.0.1:443", Path: "/api/v1/pods"}, time.Second)
	if got := testutil.ToFloat64(c.requests.WithLabelValues("200", "GET", "10.0.0.1:443")); got != 2 {
		t.Errorf("rest_client_requests_total = %v, want 2", got)
	}
	if got := histogramCount(t, reg, "rest_client_request_duration_seconds"); got != 1 {
		t.Errorf("rest_client_request_duration_seconds count = %d, want 1", got)
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewBuildInfo("v0.3.0", "abc", "go1.27.3"))
	want := `# HELP neg_controller_build_info Always 1; the labels name the running build: version, commit and go_version.
# TYPE neg_controller_build_info gauge
neg_controller_build_info{commit="abc",go_version="go1.27.3",version="v0.3.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "neg_controller_build_info"); err != nil {
		t.Error(err)
	}
}
