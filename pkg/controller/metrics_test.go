package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/metrics"
)

// gathered returns the samples of one metric family as label-string → value (counters,
// gauges) or sample count (histograms).
func gathered(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			key := labelString(m.GetLabel())
			switch {
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			default:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func labelString(ls []*dto.LabelPair) string {
	s := ""
	for _, l := range ls {
		s += fmt.Sprintf("%s=%s,", l.GetName(), l.GetValue())
	}
	return s
}

// TestMetrics runs the controller with metrics against the emulator and checks each seam.
func TestMetrics(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{OperationLatency: 5 * time.Millisecond})
	e.addNode("node-a1", zoneA)
	e.addNode("node-b1", zoneB)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(4, "node-a1", "node-b1")
	// One endpoint on a node that does not exist is skipped.
	e.setEndpoints("default", "web", []int32{80}, append(pods, testPod{name: "ghost", node: "node-x", ip: "10.99.0.1"}))

	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	cloud, err := gce.New(context.Background(), gce.Config{Project: project, Region: region, Endpoint: e.base,
		WithoutAuth: true, OperationPollInterval: 5 * time.Millisecond, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	e.start(func(c *Config) { c.Cloud, c.Metrics = cloud, m }, 0)
	name := negName("web", 80)
	e.eventually("NEGs converge", func() error { return e.checkService("web", 80, name, pods, zoneA, zoneB) })

	e.eventually("attached_endpoints", func() error {
		got := gathered(t, reg, "neg_controller_attached_endpoints")
		want := map[string]float64{"neg=" + name + ",zone=" + zoneA + ",": 2, "neg=" + name + ",zone=" + zoneB + ",": 2}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
	if got := gathered(t, reg, "neg_controller_skipped_endpoints_total")["reason=UnknownNode,"]; got < 1 {
		t.Errorf("skipped UnknownNode = %v, want ≥ 1", got)
	}
	if got := gathered(t, reg, "neg_controller_sync_duration_seconds")["result=success,"]; got < 1 {
		t.Errorf("successful syncs = %v, want ≥ 1", got)
	}
	if got := gathered(t, reg, "workqueue_adds_total")["name="+QueueName+","]; got < 1 {
		t.Errorf("queue adds = %v, want ≥ 1", got)
	}
	if got := gathered(t, reg, "neg_controller_gce_requests_total")["method=networkEndpointGroups.attachNetworkEndpoints,result=success,"]; got != 2 {
		t.Errorf("successful attach requests = %v, want 2 (one per zone)", got)
	}

	// A slice change after start is timed until its attach completes.
	more := e.pods(8, "node-a1", "node-b1")
	e.setEndpoints("default", "web", []int32{80}, more)
	e.eventually("scaled", func() error { return e.checkService("web", 80, name, more, zoneA, zoneB) })
	e.eventually("propagation observed", func() error {
		if got := gathered(t, reg, "neg_controller_endpoint_propagation_seconds")["operation=attach,"]; got < 1 {
			return fmt.Errorf("attach propagation samples = %v", got)
		}
		return nil
	})

	// An endpoint detached by hand is found from the NEG's size, and counted.
	if err := e.newCloud().DetachNetworkEndpoints(e.ctx, zoneA, name, e.endpointsOf(more, 80)[zoneA][:1]); err != nil {
		t.Fatalf("detaching by hand: %v", err)
	}
	e.eventually("drift counted", func() error {
		if got := gathered(t, reg, "neg_controller_drift_detected_total")["source=size,"]; got != 1 {
			return fmt.Errorf("drift_detected_total{source=size} = %v, want 1", got)
		}
		return nil
	})
	e.eventually("drift repaired", func() error { return e.checkService("web", 80, name, more, zoneA, zoneB) })

	// NEGs deleted: their series go away.
	e.setAnnotation("default", "web", "")
	e.eventually("NEGs deleted", func() error {
		if err := e.checkNoNEG(zoneA, name); err != nil {
			return err
		}
		return e.checkNoNEG(zoneB, name)
	})
	e.eventually("attached_endpoints series removed", func() error {
		if got := gathered(t, reg, "neg_controller_attached_endpoints"); len(got) != 0 {
			return fmt.Errorf("still %v", got)
		}
		return nil
	})
}
