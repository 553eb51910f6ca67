// Package naming produces GKE-identical NEG names and the ownership description stored on each NEG,
// and decides whether an existing NEG may be used.
//
// Invariants:
//   - NEGName is byte-identical to kubernetes/ingress-gce pkg/utils/namer (naming schema "k8s1",
//     default subnet): k8s1-{uid8}-{ns'}-{svc'}-{port'}-{hash8}, where the three middle fields are
//     trimmed proportionally to 38 characters together and hash8 is the first 8 hex characters of
//     sha256("{uid8};{ns};{svc};{port}") over the untrimmed values. The result is a valid GCE name
//     of at most 63 characters for every Kubernetes namespace and Service name.
//   - Description.String is byte-identical to GKE's NEG description JSON (keys cluster-uid,
//     namespace, service-name, port in that order, empty ones omitted).
//   - Classify never answers Owned or Adoptable for a NEG whose description names another
//     cluster, namespace, Service or port, nor for a custom-named NEG without a description we wrote.
//   - Hybrid NEGs are named like all others (NEGName, or the custom name). hybrid.go knows the
//     other hybrid controller, GoogleCloudPlatform/cloud-solutions k8s-hybrid-neg-controller:
//     the markers on the NEGs it creates (IsHybridControllerNEG) and its own generated names
//     (HybridControllerName, md5-based, never equal to NEGName). Names it already wrote into a
//     Service's hybrid-neg-status are kept when taking such a Service over, not regenerated.
//   - Pure functions, no globals, no I/O.
package naming
