package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/test/rollout"
)

func TestRolloutScales(t *testing.T) {
	full, err := ScaleFor("full")
	if err != nil {
		t.Fatal(err)
	}
	if full.RolloutReplicas != 10 || full.RolloutRate != 200 {
		t.Errorf("full rollout: %d replicas at %d req/s, want the issue's 10 at 200", full.RolloutReplicas, full.RolloutRate)
	}
	small, err := ScaleFor("small")
	if err != nil {
		t.Fatal(err)
	}
	if small.RolloutReplicas <= 0 || small.RolloutRate <= 0 || small.RolloutReplicas > full.RolloutReplicas {
		t.Errorf("small rollout: %d replicas at %d req/s", small.RolloutReplicas, small.RolloutRate)
	}
}

func TestRolloutRowsAndTable(t *testing.T) {
	res := newResult("rollout")
	r := rollout.Result{What: rollout.WithoutGates, Requests: 200, OK: 150, Failed: 50, FirstError: "status 502 (no healthy upstream)",
		P50: 900 * time.Microsecond, P99: 17500 * time.Microsecond, Rollout: 7200 * time.Millisecond}
	addRolloutRows(res, r)
	gated := newResult("rollout")
	addRolloutRows(gated, rollout.Result{What: rollout.WithGates, ReadyToFirst: -40 * time.Millisecond, ReadyToFirstPods: 10})
	if v := gated.Rows[len(gated.Rows)-1].Value; v != "0.0 s (median over 10 pods)" {
		t.Errorf("Ready → first request of -40 ms rendered %q", v)
	}
	var got []string
	for _, row := range res.Rows {
		got = append(got, row.Metric+" = "+row.Value)
	}
	want := []string{
		"without readiness gates: requests = 50 of 200 failed (25.0%); first: status 502 (no healthy upstream)",
		"without readiness gates: load balancer failures by cause = no healthy backend 0, upstream errors 0, draining cuts 0, backend 5xx 0",
		"without readiness gates: latency p50 / p99 (successful requests) = 0.9 ms / 17.5 ms",
		"without readiness gates: rollout (update → old pods gone) = 7.2 s",
		"without readiness gates: pod Ready → first request = n/a (no new pod turned Ready and served)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rep := &Report{Scenarios: []*Result{res}}
	res.Tables = append(res.Tables, rollout.Table(4, 100, []rollout.Result{r}))
	if md := rep.Markdown(); !strings.Contains(md, "\n| rollout of 4 replicas at 100 req/s | requests |") ||
		!strings.Contains(md, "\n| without readiness gates | 200 | 50 | 900µs | 17.5ms | 7s | n/a |\n") {
		t.Errorf("markdown lacks the comparison table:\n%s", md)
	}
}
