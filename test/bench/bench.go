package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options configure a bench run.
type Options struct {
	// Scenarios are the names (see Names) of the scenarios to run.
	Scenarios []string
	// Scale holds every size and duration (ScaleFor).
	Scale Scale
	// OutDir receives results.md, results.json and logs/<stack>; it is created if missing.
	OutDir string
	// Keep keeps the stacks' work directories (their logs are always copied to OutDir).
	Keep bool
	// CurveMaxPods caps ScaleCurve's points (0: none).
	CurveMaxPods int
	// Profiles runs the controller with its profiling server and writes its heap and goroutine
	// profiles to OutDir/profiles: at the end of each cold-start phase and scale-curve step, and
	// the heap when its RSS peaked (see env.dumpProfiles, env.watchPeak).
	Profiles bool
}

// scenarios are every scenario in the order Run runs them. shared ones run on the shared stack.
var scenarios = []struct {
	name   string
	shared bool
	run    func(*Bench) *Result
}{
	{"cold-start", false, (*Bench).ColdStart},
	{"big-service", true, (*Bench).BigService},
	{"churn", true, (*Bench).Churn},
	{"faults", true, (*Bench).Faults},
	{"churn-raised", true, (*Bench).ChurnRaised},
	{"steady", true, (*Bench).Steady},
	{"rollout", false, (*Bench).Rollout},
	{"scale-curve", false, (*Bench).ScaleCurve},
}

// Names returns the name of every scenario, in the order Run runs them.
func Names() []string {
	var out []string
	for _, s := range scenarios {
		out = append(out, s.name)
	}
	return out
}

// Bench runs scenarios; its methods are the scenarios, each returning its Result. Close stops
// the shared stack, if one runs.
type Bench struct {
	ctx    context.Context
	sc     Scale
	outDir string
	keep   bool
	// curveMaxPods caps scale-curve's points (0: none).
	curveMaxPods int
	// profileDir receives the controller's profiles (Options.Profiles; empty: none).
	profileDir string
	// want are the selected scenarios: the shared stack is set up for those among them.
	want map[string]bool
	// sh is the running shared stack (nil: none); sharedErr, once set, fails every later
	// scenario on it.
	sh        *sharedStack
	sharedErr error
}

// New checks opts and returns a Bench that runs scenarios with them until ctx ends.
func New(ctx context.Context, opts Options) (*Bench, error) {
	names := Names()
	want := map[string]bool{}
	for _, s := range opts.Scenarios {
		if !slices.Contains(names, s) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(names, ", "))
		}
		want[s] = true
	}
	if opts.OutDir == "" {
		return nil, fmt.Errorf("no output directory")
	}
	if err := opts.Scale.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	b := &Bench{ctx: ctx, sc: opts.Scale, outDir: opts.OutDir, keep: opts.Keep, curveMaxPods: opts.CurveMaxPods, want: want}
	if opts.Profiles {
		b.profileDir = filepath.Join(opts.OutDir, "profiles")
		if err := os.MkdirAll(b.profileDir, 0o755); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Close stops the shared stack, if one runs.
func (b *Bench) Close() { b.closeShared() }

// Run runs the scenarios opts selects in the order of Names, writes results.md and
// results.json to opts.OutDir and returns the report. The error is about the run as a whole
// (bad options, results not written); a failed scenario is in the report (HarnessFailed).
func Run(ctx context.Context, opts Options) (*Report, error) {
	b, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	rep := newReport(opts.Scale)
	for _, s := range scenarios {
		if b.want[s.name] {
			rep.add(s.run(b))
		}
	}
	b.Close()
	rep.finish()
	if err := os.WriteFile(filepath.Join(opts.OutDir, "results.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return rep, err
	}
	return rep, rep.writeJSON(filepath.Join(opts.OutDir, "results.json"))
}

// say prints progress to stderr (stdout gets only the final Markdown).
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
