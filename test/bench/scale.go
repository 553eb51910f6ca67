package bench

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Scale holds every size and duration of one scale (ScaleFor). The numbers are the full
// scale.
type Scale struct {
	Name string `json:"name"`

	// cold-start: Services × pods each, on its own stack.
	ColdServices     int           `json:"coldServices"`
	ColdPodsPerSvc   int           `json:"coldPodsPerService"`
	ColdNodesPerZone int           `json:"coldNodesPerZone"`
	ColdTimeout      time.Duration `json:"coldTimeout"`

	// The shared stack (big-service, churn, faults, steady).
	SharedNodesPerZone int `json:"sharedNodesPerZone"`
	// big-service: one Service scaled 0 → BigPods → 0, then 0 → BigCompare → 0 (the scale-up
	// GKE's calls were measured on; 0 or BigPods: no second step). BigTimeout caps each phase.
	BigPods    int           `json:"bigPods"`
	BigCompare int           `json:"bigComparePods"`
	BigTimeout time.Duration `json:"bigTimeout"`
	// BigTunedQuiet: big-service then runs its last step again with the controller restarted
	// with --neg-quiet-period=BigTunedQuiet (latency-tuned), and restores it; 0: not.
	BigTunedQuiet time.Duration `json:"bigTunedQuiet"`
	// churn and faults: ChurnRate changes/s for ChurnDuration over ChurnServices Services of
	// ChurnPodsPerSvc pods; Drain bounds the wait for the last changes and convergence.
	ChurnServices   int           `json:"churnServices"`
	ChurnPodsPerSvc int           `json:"churnPodsPerService"`
	ChurnRate       float64       `json:"churnRatePerSecond"`
	ChurnDuration   time.Duration `json:"churnDuration"`
	FaultsDuration  time.Duration `json:"faultsDuration"`
	ChurnDrain      time.Duration `json:"churnDrain"`
	// churn also replaces GateRate pods/s of GateServices Services × GatePodsPerSvc pods that
	// carry the readiness gate (NEGs in health-checked backend services).
	GateServices   int     `json:"gateServices"`
	GatePodsPerSvc int     `json:"gatePodsPerService"`
	GateRate       float64 `json:"gateReplacementsPerSecond"`
	// steady: SteadyWindow of no change with --resync-period=SteadyResync (and a NEG verify
	// period of 90% of it).
	SteadyWindow time.Duration `json:"steadyWindow"`
	SteadyResync time.Duration `json:"steadyResync"`
	SteadyGC     time.Duration `json:"steadyGcPeriod"`
	// rollout: a Deployment of RolloutReplicas serving pods rolled out twice (without, then with
	// readiness gates) while RolloutRate requests/s go through the emulated load balancer.
	RolloutReplicas int `json:"rolloutReplicas"`
	RolloutRate     int `json:"rolloutRequestsPerSecond"`
	// scale-curve: one stack grown to each of CurvePoints pods (CurvePodsPerSvc per Service);
	// each step (create → every NEG exact) is capped at CurveStepTimeout. The stack gets
	// enough nodes for CurvePodsPerNode pods each at the last point (at least 2 per zone, at
	// most podsim.MaxDefaultNodes); a small value gives a small curve the node count of a
	// large one.
	CurvePoints      []int         `json:"curvePoints"`
	CurvePodsPerSvc  int           `json:"curvePodsPerService"`
	CurvePodsPerNode int           `json:"curvePodsPerNode"`
	CurveStepTimeout time.Duration `json:"curveStepTimeout"`
}

// ScaleFor returns the scale named small (CI smoke test, a few minutes) or full.
func ScaleFor(name string) (Scale, error) {
	switch name {
	case "full":
		return Scale{
			Name:         "full",
			ColdServices: 1000, ColdPodsPerSvc: 10, ColdNodesPerZone: 16, ColdTimeout: 300 * time.Second,
			SharedNodesPerZone: 16,
			BigPods:            5000, BigCompare: 1000, BigTimeout: 5 * time.Minute, BigTunedQuiet: 50 * time.Millisecond,
			ChurnServices: 200, ChurnPodsPerSvc: 30, ChurnRate: 100, ChurnDuration: 60 * time.Second, FaultsDuration: 10 * time.Second,
			ChurnDrain:   150 * time.Second,
			GateServices: 10, GatePodsPerSvc: 10, GateRate: 1,
			SteadyWindow: 60 * time.Second, SteadyResync: 10 * time.Second, SteadyGC: 30 * time.Second,
			RolloutReplicas: 10, RolloutRate: 200,
			CurvePoints: []int{1000, 10000, 50000, 100000}, CurvePodsPerSvc: 10, CurvePodsPerNode: 240, CurveStepTimeout: 12 * time.Minute,
		}, nil
	case "small":
		return Scale{
			Name:         "small",
			ColdServices: 30, ColdPodsPerSvc: 10, ColdNodesPerZone: 2, ColdTimeout: 3 * time.Minute,
			SharedNodesPerZone: 2,
			BigPods:            600, BigCompare: 1000, BigTimeout: 2 * time.Minute, BigTunedQuiet: 50 * time.Millisecond,
			ChurnServices: 20, ChurnPodsPerSvc: 10, ChurnRate: 20, ChurnDuration: 15 * time.Second, FaultsDuration: 15 * time.Second,
			ChurnDrain:   time.Minute,
			GateServices: 2, GatePodsPerSvc: 4, GateRate: 0.5,
			SteadyWindow: 20 * time.Second, SteadyResync: 10 * time.Second, SteadyGC: 30 * time.Second,
			RolloutReplicas: 4, RolloutRate: 100,
			CurvePoints: []int{300, 600, 1200}, CurvePodsPerSvc: 10, CurvePodsPerNode: 240, CurveStepTimeout: time.Minute,
		}, nil
	}
	return Scale{}, fmt.Errorf("unknown scale %q: want small or full", name)
}

// Validate checks what flags may override: the scale curve's points grow and are multiples of
// CurvePodsPerSvc, and CurvePodsPerNode fits a node's pod range.
func (s Scale) Validate() error {
	if len(s.CurvePoints) == 0 {
		return fmt.Errorf("scale-curve: no points")
	}
	for i, p := range s.CurvePoints {
		if p <= 0 || p%s.CurvePodsPerSvc != 0 || i > 0 && p <= s.CurvePoints[i-1] {
			return fmt.Errorf("scale-curve points %v: each must be a positive multiple of %d pods (per Service), larger than the one before",
				s.CurvePoints, s.CurvePodsPerSvc)
		}
	}
	if s.CurvePodsPerNode < 1 || s.CurvePodsPerNode > podsPerSimNode {
		return fmt.Errorf("scale-curve pods per node %d: want 1 to %d (a node's /24 pod range)", s.CurvePodsPerNode, podsPerSimNode)
	}
	return nil
}

// MarshalJSON writes durations as strings ("1m0s") rather than nanoseconds.
func (s Scale) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	v, t := reflect.ValueOf(s), reflect.TypeOf(s)
	for i := range t.NumField() {
		val := v.Field(i).Interface()
		if d, ok := val.(time.Duration); ok {
			val = d.String()
		}
		m[t.Field(i).Tag.Get("json")] = val
	}
	return json.Marshal(m)
}
