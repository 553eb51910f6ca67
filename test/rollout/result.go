package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// Result is what one rollout under load measured.
type Result struct {
	// What names the rollout ("without readiness gates", "with readiness gates").
	What string
	// Requests sent while the rollout ran (from 2 s before the update to 2 s after the last old
	// pod was gone); OK answered 200, Failed did not (errors and requests over the in-flight
	// bound included). FirstError describes the first failure.
	Requests, OK, Failed int64
	FirstError           string
	// P50 and P99 are latencies of the successful requests.
	P50, P99 time.Duration
	// Rollout is the time from the Deployment update until the new template is fully rolled out
	// and the old pods are gone.
	Rollout time.Duration
	// ReadyToFirst is the median, over ReadyToFirstPods of the new pods, of the time from the
	// pod's Ready condition to the first request the load balancer sent it (see readyToFirst).
	ReadyToFirst     time.Duration
	ReadyToFirstPods int
	// Frontend is what the load balancer frontend counted during the rollout: the causes of
	// the failures as the load balancer saw them.
	Frontend FrontendDelta
}

// FrontendDelta is the change of a frontend's counters over one rollout.
type FrontendDelta struct {
	Requests         int64 `json:"requests"`
	NoHealthyBackend int64 `json:"noHealthyBackend"`
	UpstreamErrors   int64 `json:"upstreamErrors"`
	DrainingCuts     int64 `json:"drainingCuts"`
	Backend5xx       int64 `json:"backend5xx"`
}

func frontendDelta(before, after fakegce.FrontendStats) FrontendDelta {
	return FrontendDelta{
		Requests:         after.Requests - before.Requests,
		NoHealthyBackend: after.NoHealthyBackend - before.NoHealthyBackend,
		UpstreamErrors:   after.UpstreamErrors - before.UpstreamErrors,
		DrainingCuts:     after.DrainingCuts - before.DrainingCuts,
		Backend5xx:       after.Backend5xx - before.Backend5xx,
	}
}

// MarshalJSON writes durations in milliseconds or seconds, with the unit in the key.
func (r Result) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return json.Marshal(struct {
		What                string        `json:"what"`
		Requests            int64         `json:"requests"`
		OK                  int64         `json:"ok"`
		Failed              int64         `json:"failed"`
		FirstError          string        `json:"firstError,omitempty"`
		P50Ms               float64       `json:"p50Ms"`
		P99Ms               float64       `json:"p99Ms"`
		RolloutSeconds      float64       `json:"rolloutSeconds"`
		ReadyToFirstSeconds *float64      `json:"readyToFirstRequestMedianSeconds"`
		ReadyToFirstPods    int           `json:"readyToFirstRequestPods"`
		Frontend            FrontendDelta `json:"frontend"`
	}{
		What: r.What, Requests: r.Requests, OK: r.OK, Failed: r.Failed, FirstError: r.FirstError,
		P50Ms: ms(r.P50), P99Ms: ms(r.P99), RolloutSeconds: r.Rollout.Round(time.Millisecond).Seconds(),
		ReadyToFirstSeconds: r.readyToFirstSeconds(), ReadyToFirstPods: r.ReadyToFirstPods,
		Frontend: r.Frontend,
	})
}

func (r Result) readyToFirstSeconds() *float64 {
	if r.ReadyToFirstPods == 0 {
		return nil
	}
	s := r.ReadyToFirst.Round(time.Millisecond).Seconds()
	return &s
}

// ReadyToFirstString renders the Ready → first request median as the table does: "6.8s (10
// pods)", or "n/a" when no pod both turned Ready and served a request.
func (r Result) ReadyToFirstString() string {
	if r.ReadyToFirstPods == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (%d pods)", r.ReadyToFirst.Round(100*time.Millisecond), r.ReadyToFirstPods)
}

// Row is the result's line of the comparison table (see Table).
func (r Result) Row() string {
	return fmt.Sprintf("| %s | %d | %d | %s | %s | %s | %s |", r.What, r.Requests, r.Failed,
		r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Rollout.Round(time.Second),
		r.ReadyToFirstString())
}

// Table renders the comparison table of rollouts of replicas pods at rate requests/s, one row
// per result, as TestRolloutZeroDowntime prints it and the README quotes it.
func Table(replicas int32, rate int, results []Result) string {
	rows := []string{
		fmt.Sprintf("| rollout of %d replicas at %d req/s | requests | failed | p50 | p99 | rollout | pod Ready → first request (median) |", replicas, rate),
		"|---|---|---|---|---|---|---|",
	}
	for _, r := range results {
		rows = append(rows, r.Row())
	}
	return strings.Join(rows, "\n")
}
