package bench

import (
	"os"
	"testing"
	"time"
)

func TestPercentilesNearestRank(t *testing.T) {
	var d []sample
	for i := 1; i <= 100; i++ {
		d = append(d, sample{d: time.Duration(i) * time.Millisecond, censored: i == 100})
	}
	p := percentiles(d)
	if p.N != 100 || p.P50 != 0.05 || p.P95 != 0.095 || p.P99 != 0.099 || p.Max != 0.1 || p.Censored != 1 {
		t.Errorf("percentiles = %+v", p)
	}
	if got := p.fmtP("max", p.Max) + " " + p.fmtP("p99", p.P99); got != "≥ 0.100 0.099" {
		t.Errorf("rendered %q", got)
	}
	if got := percentiles(nil); got.N != 0 {
		t.Errorf("empty: %+v", got)
	}
}

func TestMinCalls(t *testing.T) {
	if got := minCalls(map[string]int{"a": 1667, "b": 1667, "c": 1666, "d": 0, "e": 500}); got != 13 {
		t.Errorf("minCalls = %d, want 4+4+4+0+1", got)
	}
}

func TestUpperVerdict(t *testing.T) {
	if v := upper("x", 1.2, 0.7, "s").verdict(); v != "**missed** by 0.50 s (1.7×)" {
		t.Errorf("verdict = %q", v)
	}
	if v := upper("x", 0, 0, "calls").verdict(); v != "met" {
		t.Errorf("verdict = %q", v)
	}
}

func TestIsRead(t *testing.T) {
	for m, want := range map[string]bool{
		mAttach: false, mDetach: false, mInsert: false, mList: true,
		"compute.zoneOperations.wait": true, "compute.networkEndpointGroups.get": true,
		"compute.networkEndpointGroups.aggregatedList": true, "compute.networkEndpointGroups.delete": false,
	} {
		if isRead(m) != want {
			t.Errorf("isRead(%s) = %v", m, !want)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if s.rssKiB <= 0 || s.hwmKiB < s.rssKiB/2 || s.cpuSec < 0 {
		t.Errorf("sample = %+v", s)
	}
}

func TestScales(t *testing.T) {
	for _, n := range []string{"small", "full"} {
		sc, err := ScaleFor(n)
		if err != nil {
			t.Fatal(err)
		}
		// Every pod must fit the nodes' /24 pod ranges (253 usable addresses each).
		if cold := sc.ColdServices * sc.ColdPodsPerSvc; cold > 3*sc.ColdNodesPerZone*250 {
			t.Errorf("%s: %d cold-start pods do not fit %d nodes per zone", n, cold, sc.ColdNodesPerZone)
		}
		if shared := sc.ChurnServices*sc.ChurnPodsPerSvc + max(sc.BigPods, sc.BigCompare); shared > 3*sc.SharedNodesPerZone*250 {
			t.Errorf("%s: %d shared-stack pods do not fit %d nodes per zone", n, shared, sc.SharedNodesPerZone)
		}
		if err := sc.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := ScaleFor("huge"); err == nil {
		t.Error("unknown scale accepted")
	}
}

func TestScaleValidate(t *testing.T) {
	sc, _ := ScaleFor("small")
	for name, mod := range map[string]func(*Scale){
		"points not growing":      func(s *Scale) { s.CurvePoints = []int{600, 300} },
		"not per Service":         func(s *Scale) { s.CurvePoints = []int{305} },
		"no points":               func(s *Scale) { s.CurvePoints = nil },
		"no pods per node":        func(s *Scale) { s.CurvePodsPerNode = 0 },
		"more pods than a node's": func(s *Scale) { s.CurvePodsPerNode = 254 },
	} {
		s := sc
		mod(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCurveNodesPerZone(t *testing.T) {
	for _, tc := range []struct {
		top, perNode, zones, want int
	}{
		{1200, 240, 3, 2},     // small: at least 2 per zone
		{10000, 240, 3, 14},   // 42 nodes
		{50000, 240, 3, 70},   // 209 nodes
		{100000, 240, 3, 139}, // 417 nodes: past the 254 of the old address plan
		{1200, 2, 3, 200},     // a small curve with a large curve's node count
		{400000, 240, 3, 508}, // capped at podsim.MaxDefaultNodes / 3
	} {
		if got := curveNodesPerZone(tc.top, tc.perNode, tc.zones); got != tc.want {
			t.Errorf("curveNodesPerZone(%d, %d, %d) = %d, want %d", tc.top, tc.perNode, tc.zones, got, tc.want)
		}
	}
}
