// Package bench is `make bench` (the thin main is test/cmd/bench): it runs named scenarios
// against the real local control plane (test/stack: etcd, kube-apiserver,
// kube-controller-manager), the in-process fakegce emulator, the pod simulator and the
// neg-controller binary, and writes results.md and results.json.
//
// Each scenario is one method of Bench: ColdStart, BigService, Churn, Faults, ChurnRaised,
// Steady, Rollout and ScaleCurve (results.md describes each under "Scenario details": its
// workload, controller command line and notes). Run runs those Options.Scenarios names, in the
// order of Names, and writes the report.
//
// ColdStart runs on its own stack. BigService, Churn, Faults, ChurnRaised and Steady share a
// second stack, set up on the first call of one of them for every one of them that
// Options.Scenarios selects (the first three use the controller started in its set-up;
// ChurnRaised and Steady restart it with their own flags). Rollout runs on a third stack whose
// pods serve HTTP behind an emulated load balancer: a Deployment is rolled out under load
// without and then with readiness gates (test/rollout, shared with the e2e test
// TestRolloutZeroDowntime). ScaleCurve grows a fourth stack step by step (1k, 10k, 50k, 100k
// pods at full scale) with one controller and records its memory, CPU and sync latency at each
// point (scalecurve.go). Only one stack runs at a time: a scenario on a stack of its own stops
// the shared one first.
//
// Targets are measured, never asserted: a scenario's failure is a harness failure, recorded in
// its Result (Report.HarnessFailed), never a missed target.
//
// Like the rest of test/, this package must not be imported by pkg/ or cmd/.
package bench
