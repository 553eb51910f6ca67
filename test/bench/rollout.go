package bench

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/rollout"
)

// rolloutOperationLatency is fakegce's operation latency in the rollout scenario: the e2e
// test's, not operationLatency.
func rolloutOperationLatency() time.Duration { return rollout.StackOptions().GCE.OperationLatency }

// startRolloutEnv starts the rollout scenario's stack with test/rollout's options (pods that
// serve HTTP and are probed for real, 30 s to terminate, 20 ms GCE operations) in workDir and
// wraps it like startEnv.
func startRolloutEnv(ctx context.Context, workDir string) (*env, error) {
	opts := rollout.StackOptions()
	opts.WorkDir = workDir
	opts.GCE.RequestLogSize = fakegce.DefaultRequestLogSize * 10
	return startEnvWith(ctx, opts, "bench (fakegce+podsim+load+harness)")
}

// rolloutDetails is the rollout scenario's JSON details.
type rolloutDetails struct {
	Replicas      int32                 `json:"replicas"`
	Rate          int                   `json:"requestsPerSecond"`
	AttachLatency string                `json:"attachLatency"`
	SetupSeconds  float64               `json:"setupSeconds"`
	Rollouts      []rollout.Result      `json:"rollouts"`
	Frontend      fakegce.FrontendStats `json:"frontend"` // cumulative, set-up included
}

// Rollout is TestRolloutZeroDowntime as a measurement: on its own stack with serving
// pods, a Deployment behind an emulated load balancer is rolled out under load, first without
// and then with readiness gates (test/rollout).
func (b *Bench) Rollout() *Result {
	res := newResult("rollout")
	t0 := time.Now()
	defer func() { res.Seconds = round(time.Since(t0).Seconds(), 1) }()
	cfg := rollout.Config{
		Namespace: "default", Name: "roll", Replicas: int32(b.sc.RolloutReplicas), Rate: b.sc.RolloutRate,
		AttachLatency: rollout.GCEAttachLatency,
		Logf:          func(format string, args ...any) { say("rollout: "+format, args...) },
	}
	opts := rollout.StackOptions()
	res.Workload = fmt.Sprintf("one Deployment of %d serving pods (podsim serves HTTP on each pod's address; readiness probe every 1 s, "+
		"preStop sleep 5 s, termination grace 30 s, maxSurge and maxUnavailable 25%%) selected by a Service annotated `%s`, whose NEGs "+
		"(one per zone, %d nodes per zone) are the backends of a backend service with an HTTP health check that really probes the pods "+
		"(every 1 s, healthy after 2 passes) and 10 s of connection draining, reached through a fakegce load balancer frontend. "+
		"A client sends %d requests/s through the frontend while the Deployment is rolled out twice: first a template change without "+
		"readiness gates, then one that adds the gate `cloud.google.com/load-balancer-neg-ready`. Each rollout's load runs from 2 s before "+
		"the update until 2 s after the last old pod is gone; requests beyond 200 in flight count as failed. The code is test/rollout, "+
		"shared with the e2e test TestRolloutZeroDowntime (which runs 10 replicas at 200 requests/s and asserts 0 failures with gates).",
		cfg.Replicas, negAnno, opts.NodesPerZone, cfg.Rate)
	res.note("GCE's pace is modelled as in the e2e test: every attach call takes %s longer (a fakegce latency fault injected once the "+
		"Deployment is served), and a new endpoint needs two passing probes to be HEALTHY. fakegce's operation latency is %s here, "+
		"not the %s of the other scenarios.", cfg.AttachLatency, opts.GCE.OperationLatency, operationLatency)
	res.note("Stack: pods serve HTTP (stack.Options.ServePods: readiness from the httpGet probe, preStop sleeps honoured), %d nodes per "+
		"zone, deleted pods may take up to %s to terminate. Latencies are of the successful requests. \"Pod Ready → first request\" "+
		"compares each new pod's Ready condition (second resolution) with the first request the load balancer sent it: without the "+
		"gate, positive (the pod counts as Ready before the load balancer can use it); with it, about 0 or negative.",
		opts.NodesPerZone, opts.PodMaxGrace)
	err := b.withStackFrom("rollout", opts.NodesPerZone, func(dir string) (*env, error) { return startRolloutEnv(b.ctx, dir) }, func(e *env) (ferr error) {
		defer func() {
			if ferr != nil {
				res.fail(e, ferr)
			}
		}()
		// The e2e test's flags; baseFlags already hold --v=2.
		flags := slices.DeleteFunc(rollout.ControllerFlags(), func(f string) bool { return slices.Contains(baseFlags, f) })
		if err := e.startController(flags...); err != nil {
			return err
		}
		res.Controller = e.controllerArgs()
		cfg.Alive = e.controllerAlive
		ts := time.Now()
		fx, err := rollout.Setup(b.ctx, e.st, cfg)
		if err != nil {
			return err
		}
		setup := time.Since(ts)
		res.add("set-up: Service → NEGs in every zone, load balancer, Deployment served", "%.1f s", setup.Seconds())
		e.callWindow()
		e.smp.begin()
		results, err := fx.Compare(b.ctx)
		res.Calls["rollouts"] = e.calls()
		res.Procs = e.smp.end()
		stats, _ := e.st.GCE.Frontend(fx.Frontend)
		res.Details = rolloutDetails{Replicas: cfg.Replicas, Rate: cfg.Rate, AttachLatency: cfg.AttachLatency.String(),
			SetupSeconds: round(setup.Seconds(), 1), Rollouts: results, Frontend: stats}
		for _, r := range results {
			addRolloutRows(res, r)
		}
		if len(results) > 0 {
			res.Tables = append(res.Tables, rollout.Table(cfg.Replicas, cfg.Rate, results))
		}
		if err != nil {
			return err
		}
		with := results[len(results)-1]
		res.Targets = append(res.Targets, upper("failed requests with readiness gates", float64(with.Failed), 0, "requests"))
		return e.controllerAlive()
	})
	if err != nil && res.Error == "" {
		res.fail(nil, err)
	}
	return res
}

// addRolloutRows adds one rollout's numbers to the summary.
func addRolloutRows(res *Result, r rollout.Result) {
	pct := 0.0
	if r.Requests > 0 {
		pct = 100 * float64(r.Failed) / float64(r.Requests)
	}
	failed := fmt.Sprintf("%d of %d failed (%.1f%%)", r.Failed, r.Requests, pct)
	if r.FirstError != "" {
		failed += "; first: " + r.FirstError
	}
	res.add(r.What+": requests", "%s", failed)
	res.add(r.What+": load balancer failures by cause", "no healthy backend %d, upstream errors %d, draining cuts %d, backend 5xx %d",
		r.Frontend.NoHealthyBackend, r.Frontend.UpstreamErrors, r.Frontend.DrainingCuts, r.Frontend.Backend5xx)
	res.add(r.What+": latency p50 / p99 (successful requests)", "%.1f ms / %.1f ms",
		float64(r.P50.Microseconds())/1000, float64(r.P99.Microseconds())/1000)
	res.add(r.What+": rollout (update → old pods gone)", "%.1f s", r.Rollout.Seconds())
	ready := "n/a (no new pod turned Ready and served)"
	if r.ReadyToFirstPods > 0 {
		ready = fmt.Sprintf("%s s (median over %d pods)", strconv.FormatFloat(r.ReadyToFirst.Round(100*time.Millisecond).Seconds(), 'f', 1, 64),
			r.ReadyToFirstPods)
	}
	res.add(r.What+": pod Ready → first request", "%s", ready)
}
