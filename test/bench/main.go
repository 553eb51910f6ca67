// Command bench is `make bench`: it runs named scenarios against the real local control plane
// (test/stack: etcd, kube-apiserver, kube-controller-manager), the in-process fakegce emulator,
// the pod simulator and the neg-controller binary, and writes results.md and results.json.
//
// Scenarios: cold-start, big-service, churn, faults, churn-raised, steady, rollout, scale-curve (results.md
// describes each under "Scenario details": its workload, controller command line and notes).
// cold-start runs on its own stack; big-service, churn, faults, churn-raised and steady share a
// second stack (the first three use the controller started in its set-up, churn-raised and
// steady restart it with their own flags). rollout runs on a third stack whose pods serve
// HTTP behind an emulated load balancer: a Deployment is rolled out under load without and then
// with readiness gates (test/rollout, shared with the e2e test TestRolloutZeroDowntime).
// scale-curve grows a fourth stack step by step (1k, 10k, 50k, 100k pods at full scale) with
// one controller and records its memory, CPU and sync latency at each point (scalecurve.go).
// Targets are measured, never asserted: the exit status is non-zero only when the harness
// itself fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

var allScenarios = []string{"cold-start", "big-service", "churn", "faults", "churn-raised", "steady", "rollout", "scale-curve"}

func main() {
	klog.InitFlags(nil)
	defScale := os.Getenv("BENCH_SCALE")
	if defScale == "" {
		defScale = "full"
	}
	scenarios := flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run")
	scaleName := flag.String("scale", defScale, "small (CI smoke test, a few minutes) or full (default from $BENCH_SCALE, else full)")
	out := flag.String("out", "_out/bench", "output directory for results.md, results.json and the stacks' logs")
	keep := flag.Bool("keep", false, "keep the stacks' work directories (logs are always kept under --out)")
	coldTimeout := flag.Duration("cold-timeout", 0, "override the scale's cap on the cold-start convergence wait")
	curveMaxPods := flag.Int("curve-max-pods", 0, "scale-curve: stop before the first point above this many pods (0: run every point that fits)")
	flag.Parse()
	_ = flag.Set("logtostderr", "true")

	sc, err := scaleFor(*scaleName)
	if err != nil {
		fatal(err)
	}
	if *coldTimeout > 0 {
		sc.ColdTimeout = *coldTimeout
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fatal(fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(allScenarios, ", ")))
		}
		want[s] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())

	outDir, err := filepath.Abs(*out)
	if err != nil {
		fatal(err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		fatal(err)
	}
	rep := newReport(sc)
	b := &bench{ctx: ctx, sc: sc, outDir: outDir, keep: *keep, rep: rep, curveMaxPods: *curveMaxPods}
	b.run(want)
	rep.finish()
	md := rep.markdown()
	if err := os.WriteFile(filepath.Join(outDir, "results.md"), []byte(md), 0o644); err != nil {
		fatal(err)
	}
	if err := rep.writeJSON(filepath.Join(outDir, "results.json")); err != nil {
		fatal(err)
	}
	fmt.Println(md)
	fmt.Fprintf(os.Stderr, "bench: wrote %s/results.md and results.json in %s\n", outDir, time.Since(rep.start).Round(time.Second))
	if rep.harnessFailed() {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}

// bench runs the selected scenarios in a fixed order.
type bench struct {
	ctx    context.Context
	sc     scale
	outDir string
	keep   bool
	rep    *report
	// curveMaxPods caps scale-curve's points (0: none).
	curveMaxPods int
}

func (b *bench) run(want map[string]bool) {
	if want["cold-start"] {
		b.rep.add(b.coldStart())
	}
	var shared []string
	for _, s := range []string{"big-service", "churn", "faults", "churn-raised", "steady"} {
		if want[s] {
			shared = append(shared, s)
		}
	}
	if len(shared) > 0 {
		for _, r := range b.sharedStack(shared) {
			b.rep.add(r)
		}
	}
	if want["rollout"] {
		b.rep.add(b.rolloutScenario())
	}
	if want["scale-curve"] {
		b.rep.add(b.scaleCurve())
	}
}

// say prints progress to stderr (stdout gets only the final Markdown).
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
