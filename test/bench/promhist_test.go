package bench

import (
	"math"
	"strings"
	"testing"
)

func TestHistogramQuantile(t *testing.T) {
	before := promText(`# TYPE neg_controller_sync_duration_seconds histogram
neg_controller_sync_duration_seconds_bucket{result="success",le="0.1"} 10
neg_controller_sync_duration_seconds_bucket{result="success",le="0.2"} 10
neg_controller_sync_duration_seconds_bucket{result="success",le="+Inf"} 10
neg_controller_sync_duration_seconds_bucket{result="error",le="0.1"} 0
neg_controller_sync_duration_seconds_bucket{result="error",le="0.2"} 0
neg_controller_sync_duration_seconds_bucket{result="error",le="+Inf"} 0
go_memstats_heap_inuse_bytes 1.048576e+07
`)
	after := promText(`neg_controller_sync_duration_seconds_bucket{result="success",le="0.1"} 60
neg_controller_sync_duration_seconds_bucket{result="success",le="0.2"} 100
neg_controller_sync_duration_seconds_bucket{result="success",le="+Inf"} 100
neg_controller_sync_duration_seconds_bucket{result="error",le="0.1"} 0
neg_controller_sync_duration_seconds_bucket{result="error",le="0.2"} 5
neg_controller_sync_duration_seconds_bucket{result="error",le="+Inf"} 10
`)
	if got := before.sample("go_memstats_heap_inuse_bytes"); got != 10485760 {
		t.Errorf("sample = %v", got)
	}
	if got := after.sample("absent"); !math.IsNaN(got) {
		t.Errorf("absent sample = %v", got)
	}
	name := "neg_controller_sync_duration_seconds"
	d := histDelta(before.histogram(name), after.histogram(name))
	// 100 new syncs: 50 ≤ 0.1 s, 45 in (0.1, 0.2], 5 above 0.2 s.
	if q, n := histQuantile(0.5, d); n != 100 || math.Abs(q-0.1) > 1e-9 {
		t.Errorf("p50 = %v over %v", q, n)
	}
	if q, _ := histQuantile(0.7, d); math.Abs(q-(0.1+0.1*20/45)) > 1e-9 {
		t.Errorf("p70 = %v", q)
	}
	if q, _ := histQuantile(0.99, d); q != 0.2 {
		t.Errorf("p99 in +Inf = %v, want the largest finite bound", q)
	}
	if q, n := histQuantile(0.99, histDelta(d, d)); !math.IsNaN(q) || n != 0 {
		t.Errorf("empty = %v, %v", q, n)
	}
}

func TestCurveReportLinearTarget(t *testing.T) {
	pts := []curvePoint{{RSSMiB: 50}, {Pods: 1000, RSSMiB: 60, HWMMiB: 60, Converged: true},
		{Pods: 10000, RSSMiB: 100, HWMMiB: 110, Converged: true}, {Pods: 50000, RSSMiB: 300, HWMMiB: 320, Converged: true}}
	res := newResult("scale-curve")
	curveReport(res, pts, "stopped")
	if len(res.Targets) != 2 {
		t.Fatalf("targets = %+v", res.Targets)
	}
	if v := res.Targets[0].verdict(); v != "met" {
		t.Errorf("RSS at 10k: %s", v)
	}
	// 200 MiB / 40,000 pods vs 40 MiB / 9,000 pods: 1.125×.
	if lin := res.Targets[1]; lin.verdict() != "met" || !strings.HasPrefix(lin.Actual, "1.12×") {
		t.Errorf("linear: %+v", lin)
	}
}
