package bench

import (
	"fmt"
	"time"
)

// sharedStack is the stack BigService, Churn, Faults, ChurnRaised and Steady share: the churn
// Services, the big Service (empty; only when big-service is selected) and the readiness-gated
// Services (only when churn or churn-raised is).
type sharedStack struct {
	run   *stackRun
	svcs  []svcRef
	big   svcRef
	gates *gateWorkload
	// setup describes the set-up; every shared scenario notes it.
	setup string
}

// sharedEnv returns the shared stack, starting and setting it up on first use.
func (b *Bench) sharedEnv() (*sharedStack, error) {
	if b.sharedErr != nil {
		return nil, b.sharedErr
	}
	if b.sh != nil {
		return b.sh, nil
	}
	sc := b.sc
	sh := &sharedStack{svcs: serviceRefs("bench-churn", "svc", sc.ChurnServices), big: svcRef{ns: "bench-big", name: "big"}}
	if (b.want["churn"] || b.want["churn-raised"]) && sc.GateServices > 0 {
		sh.gates = &gateWorkload{svcs: serviceRefs("bench-gates", "gsvc", sc.GateServices)}
	}
	run, err := b.openStack("shared", sc.SharedNodesPerZone, func(dir string) (*env, error) {
		return startEnv(b.ctx, dir, sc.SharedNodesPerZone)
	})
	if err != nil {
		b.sharedErr = err
		return nil, err
	}
	sh.run = run
	if sh.setup, err = b.sharedSetup(run.e, sh.svcs, sh.big, b.want["big-service"], sh.gates); err != nil {
		b.sharedErr = err
		b.closeStack(run)
		return nil, err
	}
	b.sh = sh
	return sh, nil
}

// closeShared stops the shared stack, if one runs.
func (b *Bench) closeShared() {
	if b.sh != nil {
		b.closeStack(b.sh.run)
		b.sh = nil
	}
}

// onShared runs scenario name with fn on the shared stack and notes the stack's set-up in its
// result. When the set-up failed, or the controller died in an earlier scenario, it fails
// without running fn; when the controller died during fn, the stack is stopped and every later
// shared scenario fails.
func (b *Bench) onShared(name string, fn func(sh *sharedStack) *Result) *Result {
	if !b.want[name] {
		r := newResult(name)
		r.fail(nil, fmt.Errorf("the shared stack is set up for Options.Scenarios, which does not select %s", name))
		return r
	}
	sh, err := b.sharedEnv()
	if err != nil {
		r := newResult(name)
		r.fail(nil, err)
		return r
	}
	r := fn(sh)
	r.note("%s", sh.setup)
	if err := sh.run.e.controllerAlive(); err != nil {
		b.sharedErr = err
		b.closeShared()
		if r.Error == "" && len(r.Rows) == 0 {
			r.fail(nil, err)
		}
	}
	return r
}

// sharedSetup creates the Services, starts the controller (so the NEGs get created while the
// pods are), creates the pods and waits until every NEG is exact. Nothing here is measured.
func (b *Bench) sharedSetup(e *env, svcs []svcRef, big svcRef, wantBig bool, gates *gateWorkload) (string, error) {
	t0 := time.Now()
	all := append([]svcRef(nil), svcs...)
	if wantBig {
		all = append(all, big)
	}
	nss := []string{svcs[0].ns, big.ns}
	if gates != nil {
		all = append(all, gates.svcs...)
		nss = append(nss, gates.svcs[0].ns)
	}
	for _, ns := range nss {
		if err := e.createNamespace(b.ctx, ns); err != nil {
			return "", err
		}
	}
	if err := e.createServices(b.ctx, all); err != nil {
		return "", err
	}
	e.allServices = all
	if err := e.startController(); err != nil {
		return "", err
	}
	pods := e.podsFor(svcs, b.sc.ChurnPodsPerSvc, true)
	say("shared: %d Services created, controller started; creating %d pods", len(all), len(pods))
	if err := e.createPods(b.ctx, pods); err != nil {
		return "", err
	}
	if err := e.waitPods(b.ctx, svcs, b.sc.ChurnPodsPerSvc, 15*time.Minute); err != nil {
		return "", fmt.Errorf("waiting for pod IPs: %w", err)
	}
	podsAt := time.Since(t0)
	gateSetup := ""
	if gates != nil {
		s, err := b.gateSetup(e, gates, b.sc.GatePodsPerSvc)
		if err != nil {
			return "", fmt.Errorf("readiness-gate set-up: %w", err)
		}
		gateSetup = " " + s
	}
	conv, err := e.waitConverged(b.ctx, all, t0, 500*time.Millisecond, 10*time.Minute, nil)
	if err != nil {
		return "", err
	}
	if !conv.Converged {
		return "", fmt.Errorf("initial sync of the shared stack did not converge: %s\n%s", convString(conv), e.logExcerpt(25, "rror", "ailed"))
	}
	setup := fmt.Sprintf("Shared stack: %d nodes; %d annotated Services created, the controller started, then %d pods created "+
		"directly (spec.nodeName set, status by podsim; running with IPs %.0f s after the start), every other one selected; "+
		"all %d NEGs exact after %.0f s (set-up, not measured).%s",
		len(e.nodes), len(all), len(pods), podsAt.Seconds(), conv.Final.NEGs, conv.Seconds, gateSetup)
	say("shared stack ready: %s", setup)
	return setup, nil
}

// settle waits (unmeasured) until the NEGs are exact before a scenario on the shared stack.
func (b *Bench) settle(e *env, res *Result) {
	conv, err := e.waitConverged(b.ctx, e.allServices, time.Now(), 500*time.Millisecond, 5*time.Minute, nil)
	switch {
	case err != nil:
		res.note("Before the scenario: %v.", err)
	case !conv.Converged:
		res.note("Before the scenario the NEGs were still not exact after 5 min (%s); the scenario ran anyway.", conv.Final)
	case conv.Seconds > 1:
		res.note("Waited %.0f s for the previous scenario's backlog to reach GCE before starting.", conv.Seconds)
	}
}

// Steady: no change for SteadyWindow with short resync and GC periods; no mutating call should
// reach GCE (on the shared stack, with the controller restarted with those periods).
func (b *Bench) Steady() *Result {
	return b.onShared("steady", func(sh *sharedStack) *Result { return b.steady(sh.run.e) })
}

func (b *Bench) steady(e *env) *Result {
	res := newResult("steady")
	t0 := time.Now()
	defer func() { res.Seconds = round(time.Since(t0).Seconds(), 1) }()
	sc := b.sc
	verify := sc.SteadyResync * 9 / 10
	res.Workload = fmt.Sprintf("%d Services (%d NEGs), nothing changes for %s; the controller runs with --resync-period=%s, "+
		"--neg-verify-period=%s and --gc-period=%s, i.e. %.0f resync cycles — %.0f minutes' worth of the default 10 min resync.",
		len(e.allServices), len(e.allServices)*len(e.zones), sc.SteadyWindow, sc.SteadyResync, verify, sc.SteadyGC,
		sc.SteadyWindow.Seconds()/sc.SteadyResync.Seconds(), sc.SteadyWindow.Seconds()/sc.SteadyResync.Seconds()*10)
	flags := []string{"--resync-period=" + sc.SteadyResync.String(), "--neg-verify-period=" + verify.String(),
		"--gc-period=" + sc.SteadyGC.String()}
	if err := b.restart(e, res, flags); err != nil {
		res.fail(e, err)
		return res
	}
	time.Sleep(sc.SteadyResync) // let the first resync after start-up pass
	e.callWindow()
	e.smp.begin()
	say("steady: measuring %s of no change", sc.SteadyWindow)
	select {
	case <-b.ctx.Done():
	case <-time.After(sc.SteadyWindow):
	}
	c := e.calls()
	res.Calls["window"] = c
	res.Procs = e.smp.end()
	if err := e.controllerAlive(); err != nil {
		res.fail(e, err)
		return res
	}
	mins := sc.SteadyWindow.Minutes()
	res.add("mutating GCE calls in the window", "%d", c.Mutating)
	res.add("read calls per minute", "%.0f in all: %s", float64(c.Reads)/mins, perMinute(c.ByMethod, mins))
	negs := len(e.allServices) * len(e.zones)
	lists := c.ByMethod["networkEndpointGroups.listNetworkEndpoints"]
	cycles := sc.SteadyWindow.Seconds() / sc.SteadyResync.Seconds()
	perCycle := float64(lists) / float64(negs) / cycles // list calls per NEG per resync period
	if lists > 0 {
		res.add("listNetworkEndpoints calls per NEG per resync period", "%.2f (each NEG re-listed every %.1f s on average; resync %s, verify period %s)",
			perCycle, sc.SteadyResync.Seconds()/perCycle, sc.SteadyResync, verify)
	}
	why := ""
	if lists >= int(30*sc.SteadyWindow.Seconds()*0.95) {
		why = "; the listNetworkEndpoints bucket (30/s) was saturated, so fewer lists than asked were made — assuming 1 per NEG per resync"
		perCycle = max(perCycle, 1)
	}
	gcPerPass := float64(c.ByMethod["networkEndpointGroups.aggregatedList"]) / (sc.SteadyWindow.Seconds() / sc.SteadyGC.Seconds())
	res.add("projected read calls per minute at the defaults (1 h NEG verify, 2 min GC)", "≈ %.0f (%.2f lists per NEG per verify period × %d NEGs / 60 min + %.1f aggregatedList calls per GC pass / 2 min%s)",
		float64(negs)*perCycle/60+gcPerPass/2, perCycle, negs, gcPerPass, why)
	r := e.check(e.allServices)
	res.add("NEGs at the end", "%s", r)
	res.Targets = append(res.Targets, upper("mutating GCE calls in steady state", float64(c.Mutating), 0, "calls"))
	return res
}

func perMinute(m map[string]int, mins float64) string {
	s := ""
	for _, k := range sortedKeys(m) {
		if isRead("compute." + k) {
			s += fmt.Sprintf("%s %.0f, ", k, float64(m[k])/mins)
		}
	}
	if len(s) > 2 {
		s = s[:len(s)-2]
	}
	return s
}
