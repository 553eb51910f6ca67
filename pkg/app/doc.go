// Package app wires neg-controller together: the Options struct with its flags and
// validation, discovery of the project, region, network and cluster name from the GCE
// metadata server for whatever the flags leave empty, the cluster's naming UID (ConfigMap
// kube-system/ingress-uid, recovered from NEG names rather than re-invented when missing, and
// guarded while running: uidguard.go closes a gce.Fence around every GCE mutation if it
// changes) and description UID (kube-system Namespace), the Kubernetes and
// Compute Engine clients, the informers, and the controller with what it is handed (app.go
// newController): the ServiceNetworkEndpointGroup writer (svcneg.go) and the backend service
// reconciler's factory (backends.go: allow-list, region, dry-run wrapper, fence; the client,
// resync period and retry policy it shares with the controller). Library packages never read
// flags; they get plain values from here.
//
// Running in production (operating.go and the files it names): the Prometheus registry this
// package creates and serves with /healthz, /readyz and optional pprof on loopback (serve.go;
// the metrics themselves are pkg/metrics, passed to pkg/gce and pkg/controller through their
// Configs; client-go's request metric hooks, process-wide, are handed over once), with
// --metrics-secure over HTTPS with the webhook's serving certificate (servingcert.go) behind
// pkg/metricsauth's TokenReview and SubjectAccessReview filter, the build's identity
// (pkg/version) in the GCE user agent and neg_controller_build_info,
// leader election on a Lease with a client of its own, exiting when the Lease is lost
// (leader.go), the JSON log format (logging.go), the GCE budgets (--gce-*-per-minute) and
// caps (--gce-rate-limit), and --dry-run (dryrun.go:
// gce.DryRun for Compute Engine, dryRun=All for Kubernetes writes). Process-wide state (klog's
// logger, os.Exit) is touched only here and in main.
package app
