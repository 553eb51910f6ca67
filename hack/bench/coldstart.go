package main

import (
	"context"
	"fmt"
	"time"
)

// populate creates Services × perSvc pods in ns: pods first (bound to nodes directly, podsim
// writes their status), then the Services, and waits until every Service's EndpointSlices hold
// its pods. It returns a description of what it did and how fast.
func (b *bench) populate(ctx context.Context, e *env, svcs []svcRef, perSvc int, half bool) (string, error) {
	nss := map[string]bool{}
	for _, s := range svcs {
		if !nss[s.ns] {
			nss[s.ns] = true
			if err := e.createNamespace(ctx, s.ns); err != nil {
				return "", err
			}
		}
	}
	pods := e.podsFor(svcs, perSvc, half)
	t0 := time.Now()
	say("creating %d pods directly (spec.nodeName set over %d nodes)", len(pods), len(e.nodes))
	if err := e.createPods(ctx, pods); err != nil {
		return "", err
	}
	created := time.Since(t0)
	if err := e.waitPods(ctx, svcs, perSvc, 15*time.Minute); err != nil {
		return "", fmt.Errorf("waiting for pod IPs: %w", err)
	}
	running := time.Since(t0)
	say("%d pods created in %s, running with IPs after %s", len(pods), created.Round(time.Millisecond), running.Round(time.Millisecond))
	t1 := time.Now()
	if err := e.createServices(ctx, svcs); err != nil {
		return "", err
	}
	selected := perSvc
	if half {
		selected = (perSvc + 1) / 2
	}
	if err := e.waitSlices(ctx, svcs, selected, 15*time.Minute); err != nil {
		return "", fmt.Errorf("waiting for EndpointSlices: %w", err)
	}
	say("%d Services created, EndpointSlices complete after %s", len(svcs), time.Since(t1).Round(time.Millisecond))
	e.allServices = append(e.allServices, svcs...)
	return fmt.Sprintf("%d pods created directly as Pods with spec.nodeName set (no Deployment; %d nodes, round-robin so each Service spans "+
		"the 3 zones), status (IP, Ready) written by the pod simulator: created in %.0f s, all running with IPs after %.0f s "+
		"(%.0f pods/s); then %d annotated Services (`%s`) selecting %d pods each, EndpointSlices complete %.0f s later",
		len(pods), len(e.nodes), created.Seconds(), running.Seconds(), float64(len(pods))/running.Seconds(),
		len(svcs), negAnno, selected, time.Since(t1).Seconds()), nil
}

func serviceRefs(ns, prefix string, n int) []svcRef {
	out := make([]svcRef, n)
	for i := range out {
		out[i] = svcRef{ns: ns, name: fmt.Sprintf("%s-%04d", prefix, i)}
	}
	return out
}

// coldStart: Services and pods exist, no NEGs; the controller starts; time until every NEG
// holds exactly the right endpoints.
func (b *bench) coldStart() *scenarioResult {
	res := newResult("cold-start")
	t0 := time.Now()
	defer func() { res.Seconds = round(time.Since(t0).Seconds(), 1) }()
	sc := b.sc
	svcs := serviceRefs("bench-cold", "svc", sc.ColdServices)
	pods := sc.ColdServices * sc.ColdPodsPerSvc
	err := b.withStack("cold-start", sc.ColdNodesPerZone, func(e *env) (ferr error) {
		defer func() {
			if ferr != nil {
				res.fail(e, ferr)
			}
		}()
		wl, err := b.populate(b.ctx, e, svcs, sc.ColdPodsPerSvc, false)
		if err != nil {
			return err
		}
		res.Workload = wl + ". No NEG exists when the controller starts."
		start := e.callWindow()
		e.smp.begin()
		if err := e.startController(); err != nil {
			return err
		}
		res.Controller = e.controllerArgs()
		say("cold-start: controller started; waiting for %d NEGs to be exact (timeout %s)", len(svcs)*len(e.zones), sc.ColdTimeout)
		conv, err := e.waitConverged(b.ctx, svcs, start, 250*time.Millisecond, sc.ColdTimeout, nil)
		res.Calls["start→converged"] = e.calls()
		res.Procs = e.smp.end()
		res.Details = conv
		if err != nil {
			return err
		}
		res.add("Services × pods", "%d × %d = %d pods, %d NEGs", len(svcs), sc.ColdPodsPerSvc, pods, conv.Final.NEGs)
		res.add("controller start → every NEG exact", "%s", convString(conv))
		res.add("… 50% / 90% of NEGs exact", "%s / %s", milestone(conv.Half), milestone(conv.Ninety))
		c := res.Calls["start→converged"]
		res.add("GCE calls", "%d mutating, %d reads", c.Mutating, c.Reads)
		if conv.Converged {
			res.Targets = append(res.Targets, upper(fmt.Sprintf("convergence (%d Services)", len(svcs)), conv.Seconds, 15, "s"))
		} else {
			f := false
			proj := ""
			if conv.Final.NEGsExact > 0 {
				p := conv.Seconds * float64(conv.Final.NEGs) / float64(conv.Final.NEGsExact)
				proj = fmt.Sprintf("; ≈ %.0f s projected", p)
				res.add("projected convergence (linear in NEGs exact so far)", "≈ %.0f s", p)
			}
			res.Targets = append(res.Targets, target{Name: fmt.Sprintf("convergence (%d Services)", len(svcs)), Target: "≤ 15 s",
				Actual: fmt.Sprintf("not converged after %.0f s (%d/%d NEGs exact%s)", conv.Seconds, conv.Final.NEGsExact, conv.Final.NEGs, proj),
				Met:    &f, Miss: fmt.Sprintf("more than %.0f s", conv.Seconds-15)})
			res.note("The wait was capped at %s (--cold-timeout) to keep the full run under 20 minutes; run "+
				"`make bench BENCH_ARGS=\"--scenarios=cold-start --cold-timeout=15m\"` to see it converge.", sc.ColdTimeout)
		}
		if c.ByMethod["networkEndpointGroups.insert"] > 0 {
			res.add("NEG inserts per second", "%.1f", float64(c.ByMethod["networkEndpointGroups.insert"])/conv.Seconds)
		}
		rss := controllerHWM(res.Procs)
		t := upper(fmt.Sprintf("controller RSS (VmHWM) at %d pods", pods), rss, 150, "MiB")
		if pods < 10000 {
			t.Met, t.Miss = nil, ""
			t.Name += " (target is for 10,000 pods)"
		}
		res.Targets = append(res.Targets, t)
		return nil
	})
	if err != nil && res.Error == "" {
		res.fail(nil, err)
	}
	return res
}

func controllerHWM(procs []ProcCost) float64 {
	for _, p := range procs {
		if p.Name == "neg-controller" {
			return p.HWMMiB
		}
	}
	return 0
}

func milestone(sec float64) string {
	if sec == 0 {
		return "not reached"
	}
	return fmt.Sprintf("%.1f s", sec)
}
