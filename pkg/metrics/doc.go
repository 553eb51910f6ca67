// Package metrics defines every Prometheus metric of neg-controller, in one place, behind one
// struct. New(reg) registers them on a registry the caller owns (pkg/app creates it; nothing
// here touches the global default registry), and the seams record into the returned *Metrics:
//
//   - pkg/gce reports every HTTP call, every mutation's operation and every rate-limit wait
//     through the gce.Observer interface, which *Metrics implements;
//   - pkg/app installs the scrape-time sources (SetCloudState for the adaptive rate limiter, the
//     in-flight cap and the age of the oldest operation waited for; SetLeader), counts dry-run
//     mutations (ObserveDryRun) and flags a changed naming UID (SetNamingUIDConflict);
//   - pkg/controller records syncs, skipped endpoints, EndpointSlice-to-NEG propagation, its
//     work queue (QueueProvider, passed in the queue's config rather than the global
//     workqueue.SetProvider) and, at scrape time, the endpoints of every NEG it manages
//     (SetAttachedEndpointsSource).
//
// Beside them: client-go's standard work queue metrics (workqueue_depth, workqueue_adds_total,
// ..., labelled by queue name, under the names kube-controller-manager and controller-runtime
// use, so dashboards carry over), the Kubernetes client's request metrics (RESTClient:
// rest_client_requests_total, rest_client_request_duration_seconds, handed to client-go's
// process-wide hooks once by pkg/app) and neg_controller_build_info (NewBuildInfo).
//
// Changes (changes.go) times EndpointSlice changes per Service until the calls they cause
// complete, for endpoint_propagation_seconds.
//
// Every method is safe on a nil *Metrics and does nothing, so library code and tests need no
// metrics wiring. The controller's own names share the subsystem neg_controller; the README's
// "Operating" section lists every metric with its labels and meaning, and the GKE NEG
// controller's metric for the same thing (pkg/app's TestEveryMetricDocumented checks the list).
package metrics
