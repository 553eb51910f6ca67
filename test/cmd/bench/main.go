// Command bench is `make bench`: it parses its flags into bench.Options, runs the selected
// scenarios with bench.Run (test/bench documents them), prints results.md and exits non-zero
// only when the harness itself failed (1) or could not run (2), never for a missed target.
//
//	go run ./test/cmd/bench [--scale=small|full] [--scenarios=churn,steady] [--out=_out/bench]
//	    [--curve-points=1000,10000] [--curve-pods-per-node=240] [--curve-max-pods=10000] [--pprof]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/test/bench"
)

func main() {
	klog.InitFlags(nil)
	defScale := os.Getenv("BENCH_SCALE")
	if defScale == "" {
		defScale = "full"
	}
	scenarios := flag.String("scenarios", strings.Join(bench.Names(), ","), "comma-separated scenarios to run")
	scaleName := flag.String("scale", defScale, "small (CI smoke test, a few minutes) or full (default from $BENCH_SCALE, else full)")
	out := flag.String("out", "_out/bench", "output directory for results.md, results.json and the stacks' logs")
	keep := flag.Bool("keep", false, "keep the stacks' work directories (logs are always kept under --out)")
	coldTimeout := flag.Duration("cold-timeout", 0, "override the scale's cap on the cold-start convergence wait")
	curveMaxPods := flag.Int("curve-max-pods", 0, "scale-curve: stop before the first point above this many pods (0: run every point that fits)")
	curvePoints := flag.String("curve-points", "", "scale-curve: comma-separated pod counts of the points, e.g. 1000,10000,50000 (default: the scale's)")
	curvePerNode := flag.Int("curve-pods-per-node", 0, "scale-curve: size the stack's nodes for this many pods each at the last point, "+
		"e.g. 2 to give a small curve the node count of a 100k-pod one (default: the scale's, 240)")
	tunedQuiet := flag.Duration("big-tuned-quiet", -1, "big-service: --neg-quiet-period of its latency-tuned steps (0: none; default: the scale's, 50ms)")
	profiles := flag.Bool("pprof", false, "run the controller with its profiling server and write its heap and goroutine profiles to <out>/profiles "+
		"(end of each cold-start phase and scale-curve step, and the heap at the RSS peak)")
	flag.Parse()
	_ = flag.Set("logtostderr", "true")

	start := time.Now()
	sc, err := bench.ScaleFor(*scaleName)
	if err != nil {
		fatal(err)
	}
	if *coldTimeout > 0 {
		sc.ColdTimeout = *coldTimeout
	}
	if *curvePoints != "" {
		sc.CurvePoints = nil
		for _, f := range strings.Split(*curvePoints, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				fatal(fmt.Errorf("--curve-points: %w", err))
			}
			sc.CurvePoints = append(sc.CurvePoints, n)
		}
	}
	if *curvePerNode > 0 {
		sc.CurvePodsPerNode = *curvePerNode
	}
	if *tunedQuiet >= 0 {
		sc.BigTunedQuiet = *tunedQuiet
	}
	outDir, err := filepath.Abs(*out)
	if err != nil {
		fatal(err)
	}
	var names []string
	for _, s := range strings.Split(*scenarios, ",") {
		if s = strings.TrimSpace(s); s != "" {
			names = append(names, s)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = klog.NewContext(ctx, klog.Background())

	rep, err := bench.Run(ctx, bench.Options{Scenarios: names, Scale: sc, OutDir: outDir, Keep: *keep, CurveMaxPods: *curveMaxPods,
		Profiles: *profiles})
	if err != nil {
		fatal(err)
	}
	fmt.Println(rep.Markdown())
	fmt.Fprintf(os.Stderr, "bench: wrote %s/results.md and results.json in %s\n", outDir, time.Since(start).Round(time.Second))
	if rep.HarnessFailed() {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(2)
}
