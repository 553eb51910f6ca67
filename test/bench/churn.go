package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// churnPod is one pod the churn may flip in or out of its Service.
type churnPod struct {
	ns, name, svc string
	ep            neg.Endpoint
	zone, negNm   string
	serving       bool
}

// churnStats is what the driver did.
type churnStats struct {
	Changes      int     `json:"changes"`
	Attaches     int     `json:"attaches"`
	Detaches     int     `json:"detaches"`
	Skipped      int     `json:"skippedNoIdlePod"`
	Errors       int     `json:"patchErrors"`
	AchievedRate float64 `json:"achievedRatePerSecond"`
	Pods         int     `json:"pods"`
}

// churnPool hands out pods that have no change in flight, at random.
type churnPool struct {
	mu   sync.Mutex
	idle []*churnPod
	rng  *rand.Rand
}

func (p *churnPool) take() *churnPod {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return nil
	}
	i := p.rng.IntN(len(p.idle))
	pod := p.idle[i]
	p.idle[i] = p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	return pod
}

func (p *churnPool) put(pod *churnPod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idle = append(p.idle, pod)
}

func (e *env) churnPods(svcs []svcRef) []*churnPod {
	var out []*churnPod
	for _, s := range svcs {
		name := e.negName(s)
		for _, p := range e.runningPods(s) {
			out = append(out, &churnPod{
				ns: p.Namespace, name: p.Name, svc: s.key(),
				ep:   neg.Endpoint{Instance: p.Spec.NodeName, IP: p.Status.PodIP, Port: targetPort},
				zone: e.nodeZone[p.Spec.NodeName], negNm: name, serving: p.Labels[serveLabel] == "yes",
			})
		}
	}
	return out
}

// drive flips the serve label of random idle pods at rate per second for d, tracking every
// change with t. A pod becomes idle again once fakegce reflects its change.
func (e *env) drive(ctx context.Context, pool *churnPool, t *latencyTracker, rate float64, d time.Duration) churnStats {
	var st churnStats
	var made, att, det, skipped, errs atomic.Int64
	jobs := make(chan struct{}, 10000)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range jobs {
				pod := pool.take()
				if pod == nil {
					skipped.Add(1)
					continue
				}
				c := &change{svc: pod.svc, negRef: pod.zone + "/" + pod.negNm, zone: pod.zone, negNm: pod.negNm,
					ep: pod.ep, attach: !pod.serving, pod: pod}
				t.add(c)
				err := e.setServe(ctx, pod.ns, pod.name, c.attach)
				at := time.Now()
				if err == nil {
					pod.serving = c.attach // before patched: the pod may go back to the pool at once
				}
				t.patched(c, at, err == nil)
				if err != nil {
					errs.Add(1)
					pool.put(pod)
					continue
				}
				made.Add(1)
				if c.attach {
					att.Add(1)
				} else {
					det.Add(1)
				}
			}
		})
	}
	start := time.Now()
	atRate(ctx, rate, d, func() { jobs <- struct{}{} })
	close(jobs)
	wg.Wait()
	el := time.Since(start)
	st.Changes, st.Attaches, st.Detaches = int(made.Load()), int(att.Load()), int(det.Load())
	st.Skipped, st.Errors = int(skipped.Load()), int(errs.Load())
	st.AchievedRate = round(float64(st.Changes)/el.Seconds(), 1)
	return st
}

// quotaNote is the note of the churn scenarios that run against GCE's default quota.
const quotaNote = "fakegce enforces GCE's documented default rate quota during this scenario (1,500 requests per minute per " +
	"group, fixed minute windows, 403 rateLimitExceeded); per-group usage is in the GCE calls table."

// Churn flips pods in and out of the churn Services at ChurnRate for ChurnDuration (and
// replaces readiness-gated pods meanwhile) with the controller of the shared set-up, and
// measures how fast each change reaches GCE.
func (b *Bench) Churn() *Result {
	return b.onShared("churn", func(sh *sharedStack) *Result {
		res := newResult("churn")
		defer timed(res)()
		res.note(quotaNote)
		c := b.newChurn(sh.run.e, res, sh.svcs, b.sc.ChurnDuration, sh.gates)
		if !c.run() {
			return res
		}
		c.latencyTarget()
		c.finish(c.conv)
		return res
	})
}

// ChurnRaised is Churn with the controller restarted with raisedFlags and fakegce's quota
// raised to match, to show the controller's own latency; the controller keeps those flags
// (Steady restarts it again).
func (b *Bench) ChurnRaised() *Result {
	return b.onShared("churn-raised", func(sh *sharedStack) *Result {
		res := newResult("churn-raised")
		defer timed(res)()
		e := sh.run.e
		if err := e.startController(raisedFlags...); err != nil {
			res.fail(e, err)
			return res
		}
		res.note("The controller was restarted with raised client-side limits (`%s`) before this scenario, and fakegce's rate quota "+
			"raised to %d per minute per group, to show its own latency where the project's quota allows that budget.",
			strings.Join(raisedFlags, " "), raisedQuotaPerMinute)
		c := b.newChurn(e, res, sh.svcs, b.sc.ChurnDuration, sh.gates)
		if !c.run() {
			return res
		}
		c.latencyTarget()
		c.finish(c.conv)
		return res
	})
}

// Faults is Churn for FaultsDuration, without gated pods, while every Compute call fails with
// 429 at 20% and 503 at 5%; it checks that the NEGs end exact, clearing the faults for a
// second wait if they were not by the end of the first.
func (b *Bench) Faults() *Result {
	return b.onShared("faults", func(sh *sharedStack) *Result {
		res := newResult("faults")
		defer timed(res)()
		res.note(quotaNote)
		sc, e := b.sc, sh.run.e
		c := b.newChurn(e, res, sh.svcs, sc.FaultsDuration, nil)
		for _, f := range []fakegce.Fault{
			{Method: "*", Code: 429, Reason: "rateLimitExceeded", Rate: 0.20},
			{Method: "*", Code: 503, Rate: 0.05},
		} {
			e.st.GCE.InjectFault(f)
		}
		defer e.st.GCE.ClearFaults()
		res.note("Faults: every Compute call (all methods, operation waits included) fails with 429 rateLimitExceeded at 20%% and, "+
			"independently, 503 at 5%% (the 429 wins when both fire), from churn start until the end of the convergence wait "+
			"(at most %s after the churn); the churn is shortened to %s at this scale to bound the run time.", sc.ChurnDrain, c.dur)
		if !c.run() {
			return res
		}
		res.add("responses", "%s", statusSummary(res.Calls["churn+drain"].ByStatus))
		final := c.conv
		if !c.conv.Converged {
			e.st.GCE.ClearFaults()
			say("faults: not converged with faults on; cleared them, waiting up to %s more", sc.ChurnDrain)
			after, err := e.waitConverged(b.ctx, sh.svcs, time.Now(), 250*time.Millisecond, sc.ChurnDrain, nil)
			if err != nil {
				res.fail(e, err)
				return res
			}
			c.details["convergenceAfterFaultsCleared"] = after
			res.add("convergence after the faults were then cleared", "%s", convString(after))
			final = after
		}
		res.Targets = append(res.Targets,
			upper("missing endpoints at the end", float64(final.Final.Missing), 0, ""),
			upper("extra endpoints at the end", float64(final.Final.Extra), 0, ""))
		c.finish(final)
		return res
	})
}

// timed records the scenario's wall time when the returned function runs (deferred).
func timed(res *Result) func() {
	t0 := time.Now()
	return func() { res.Seconds = round(time.Since(t0).Seconds(), 1) }
}

// churn is one run of the churn driver on the shared stack, for Churn, ChurnRaised and
// Faults: newChurn describes it, run drives and measures it, latencyTarget and finish add
// the closing rows and notes.
type churn struct {
	b     *Bench
	e     *env
	res   *Result
	svcs  []svcRef
	dur   time.Duration
	gates *gateWorkload
	pods  []*churnPod
	// Set by run: the driver's stats, the latencies and the convergence after the churn.
	lat     Latencies
	conv    convergence
	details map[string]any
}

// newChurn records the controller and the workload in res after waiting for the previous
// scenario's backlog (settle).
func (b *Bench) newChurn(e *env, res *Result, svcs []svcRef, dur time.Duration, gates *gateWorkload) *churn {
	sc := b.sc
	res.Controller = e.controllerArgs()
	b.settle(e, res)
	c := &churn{b: b, e: e, res: res, svcs: svcs, dur: dur, gates: gates, pods: e.churnPods(svcs)}
	res.Workload = fmt.Sprintf("%d Services × %d pods (about half selected, 3 zones; %d pods in the pool); %.0f changes/s for %s. "+
		"One change = flip one random pod's `serve` label (the Services select serve=yes), which adds or removes exactly one "+
		"endpoint; a pod is flipped again only after fakegce shows its previous change. Readiness is not flipped: the "+
		"controller attaches not-ready endpoints too, so a readiness flip changes no NEG.",
		len(svcs), sc.ChurnPodsPerSvc, len(c.pods), sc.ChurnRate, dur)
	if gates != nil {
		res.Workload += fmt.Sprintf(" At the same time, %.1f pods/s of %d readiness-gated Services × %d pods are replaced (a new gated "+
			"pod created on the same node, then the old one deleted) for the readiness gate flip latencies.",
			sc.GateRate, len(gates.svcs), sc.GatePodsPerSvc)
	}
	return c
}

// run drives the churn (and the gated pod replacements), waits up to ChurnDrain for every
// change to reach GCE and the NEGs to be exact, and adds the rows every churn scenario has. It
// returns false when the scenario failed (recorded in res).
func (c *churn) run() bool {
	b, e, res, sc, name, dur, gates := c.b, c.e, c.res, c.b.sc, c.res.Name, c.dur, c.gates
	pods := c.pods
	pool := &churnPool{idle: append([]*churnPod(nil), pods...), rng: rand.New(rand.NewPCG(1, uint64(len(pods))))}
	tr := newLatencyTracker(e, 50*time.Millisecond, func(ch *change) { pool.put(ch.pod) })
	defer tr.close()
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	go tr.run(ctx)
	checked := c.svcs
	var gt *gateTracker
	gateDone := make(chan [2]int, 1)
	if gates != nil {
		var err error
		if gt, err = newGateTracker(e, 50*time.Millisecond); err != nil {
			res.fail(e, err)
			return false
		}
		defer gt.close()
		go gt.run(ctx)
		checked = append(append([]svcRef(nil), c.svcs...), gates.svcs...)
	}

	e.callWindow()
	e.smp.begin()
	say("%s: %.0f changes/s for %s over %d pods", name, sc.ChurnRate, dur, len(pods))
	if gt != nil {
		go func() {
			made, failed := e.replaceGated(ctx, gates, gt, sc.GateRate, dur)
			gateDone <- [2]int{made, failed}
		}()
	}
	st := e.drive(ctx, pool, tr, sc.ChurnRate, dur)
	var gateMade [2]int
	if gt != nil {
		gateMade = <-gateDone
	}
	st.Pods = len(pods)
	tEnd := time.Now()
	say("%s: %d changes made (%.1f/s); waiting up to %s for them to reach GCE", name, st.Changes, st.AchievedRate, sc.ChurnDrain)
	conv, err := e.waitConverged(ctx, checked, tEnd, 250*time.Millisecond, sc.ChurnDrain,
		func() bool { return tr.pendingCount() == 0 && (gt == nil || gt.pending() == 0) })
	res.Calls["churn+drain"] = e.calls()
	res.Procs = e.smp.end()
	lat := tr.summary(time.Now())
	if gt != nil {
		g := gt.summary(time.Now())
		lat.Gates = &g
	}
	cancel()
	res.Latency = &lat
	c.lat, c.conv = lat, conv
	c.details = map[string]any{"driver": st, "convergenceAfterChurn": conv, "maxPendingChanges": tr.maxPending}
	res.Details = c.details
	if err != nil {
		res.fail(e, err)
		return false
	}
	res.add("changes made", "%d (%d attach, %d detach) in %s: %.1f/s achieved of %.0f/s asked; %d skipped (no idle pod), %d patch errors",
		st.Changes, st.Attaches, st.Detaches, dur, st.AchievedRate, sc.ChurnRate, st.Skipped, st.Errors)
	res.add("EndpointSlice change → GCE p50 / p95 / p99 / max", "%s / %s / %s / %s s (n=%d)", lat.SliceToGCE.fmtP("p50", lat.SliceToGCE.P50),
		lat.SliceToGCE.fmtP("p95", lat.SliceToGCE.P95), lat.SliceToGCE.fmtP("p99", lat.SliceToGCE.P99), lat.SliceToGCE.fmtP("max", lat.SliceToGCE.Max), lat.SliceToGCE.N)
	if g := lat.Gates; g != nil {
		gateRows(res, g, gateMade)
	} else {
		res.add("readiness gate flip latency", "not measured in this scenario (the churn scenario replaces gated pods)")
	}
	res.add("changes waiting for GCE at most at once", "%d", tr.maxPending)
	res.add("changes not in GCE when observation ended", "%d", lat.Unobserved)
	res.add("convergence after the churn stopped (all changes in GCE, NEGs exact)", "%s", convString(conv))
	calls := res.Calls["churn+drain"]
	res.add("attach / detach calls", "%d / %d for %d / %d endpoint changes", calls.ByMethod["networkEndpointGroups.attachNetworkEndpoints"],
		calls.ByMethod["networkEndpointGroups.detachNetworkEndpoints"], st.Attaches, st.Detaches)
	return true
}

// gateRows adds the readiness gate rows, target and note; made is (replaced, failed or skipped).
func gateRows(res *Result, g *GateLatencies, made [2]int) {
	res.add("readiness gate: endpoint attached in GCE → gate True p50 / p95 / p99 / max", "%s / %s / %s / %s s (n=%d; includes fakegce's %s to HEALTHY)",
		g.FromGCE.fmtP("p50", g.FromGCE.P50), g.FromGCE.fmtP("p95", g.FromGCE.P95), g.FromGCE.fmtP("p99", g.FromGCE.P99),
		g.FromGCE.fmtP("max", g.FromGCE.Max), g.FromGCE.N, gateHealthyDelay)
	res.add("readiness gate: pod created → gate True p50 / p95 / p99 / max", "%s / %s / %s / %s s (n=%d)",
		g.FromCreate.fmtP("p50", g.FromCreate.P50), g.FromCreate.fmtP("p95", g.FromCreate.P95), g.FromCreate.fmtP("p99", g.FromCreate.P99),
		g.FromCreate.fmtP("max", g.FromCreate.Max), g.FromCreate.N)
	res.add("gated pods replaced", "%d (%d failed or skipped); gate reasons %v; %d replaced again before their gate opened (no sample)",
		made[0], made[1], g.Reasons, g.Replaced)
	limit := (gateHealthyDelay + readinessPoll + 500*time.Millisecond).Seconds()
	t := upper("p99 GCE attach → gate True (HEALTHY delay + 1 s poll + 500 ms)", g.FromGCE.P99, limit, "s")
	t.Actual = g.FromGCE.fmtP("p99", g.FromGCE.P99) + " s"
	res.Targets = append(res.Targets, t)
	res.note("Readiness gates: the bench's pod informer timestamps the gate condition turning True; the attach time is the 50 ms "+
		"poll of fakegce that first shows the endpoint. fakegce reports an endpoint HEALTHY %s after it is attached (real GCE: about "+
		"checkIntervalSec × healthyThreshold), so the controller's own share is the latency minus %s; the reflector lists a NEG's "+
		"health every %s while pods wait on it.", gateHealthyDelay, gateHealthyDelay, readinessPoll)
}

// latencyTarget adds the target of Churn and ChurnRaised: p99 EndpointSlice change → GCE
// within fakegce's operation latency + 500 ms.
func (c *churn) latencyTarget() {
	lat := c.lat
	limit := (operationLatency + 500*time.Millisecond).Seconds()
	t := upper("p99 EndpointSlice change → GCE (op latency + 500 ms)", lat.SliceToGCE.P99, limit, "s")
	t.Actual = lat.SliceToGCE.fmtP("p99", lat.SliceToGCE.P99) + " s"
	c.res.Targets = append(c.res.Targets, t)
}

// finish adds the closing notes, and the controller's errors when final is not converged.
func (c *churn) finish(final convergence) {
	res, lat := c.res, c.lat
	if lat.NoSlice > 0 || lat.Negative > 0 {
		res.note("%d changes were never seen by the bench's EndpointSlice informer (excluded from slice→GCE); %d slice→GCE samples were negative (informer skew) and counted as 0.", lat.NoSlice, lat.Negative)
	}
	res.note("Latency is measured by polling fakegce's NEGEndpoints every 50 ms for the NEGs with a pending change (resolution ≈ 50 ms); an endpoint counts as attached when its attach operation is DONE (fakegce applies the effect at DONE, %s after the call). Changes not in GCE when the observation ended are included as censored samples; percentiles that fall on them are shown as ≥.", operationLatency)
	if !final.Converged {
		res.LogExcerpts = append(res.LogExcerpts, c.e.logExcerpt(25, "rror", "etry", "ailed"))
	}
}

func statusSummary(m map[int]int) string {
	s := ""
	for _, code := range []int{200, 429, 503} {
		s += fmt.Sprintf("%d×%d ", m[code], code)
	}
	for code, n := range m {
		if code != 200 && code != 429 && code != 503 {
			s += fmt.Sprintf("%d×%d ", n, code)
		}
	}
	return s
}

func convString(c convergence) string {
	if c.Converged {
		return fmt.Sprintf("%.2f s (%s)", c.Seconds, c.Final)
	}
	return fmt.Sprintf("NOT converged after %.0f s (%s)", c.Seconds, c.Final)
}
