// Package annotation reads the user-written cloud.google.com/neg Service annotation and reads and
// writes the controller-written cloud.google.com/neg-status annotation, byte-compatible with GKE's
// NEG controller (kubernetes/ingress-gce pkg/negannotation).
//
// Invariants:
//   - Pure functions: no API calls, no clocks, no globals; inputs are never modified.
//   - Every validation failure is an *Error whose Reason is a CamelCase event reason and whose
//     Message tells the user what to fix. Validation never panics, whatever the annotation holds
//     (see FuzzParse and FuzzFromService).
//   - Unknown JSON fields are ignored, as in GKE; field names match case-insensitively
//     (encoding/json), as in GKE.
//   - Status.String is the exact compact JSON GKE writes: keys sorted, zones sorted, empty fields
//     omitted.
//
// Hybrid NEGs (hybrid.go): solutions.cloud.google.com/hybrid-neg, the annotation of
// GoogleCloudPlatform/cloud-solutions k8s-hybrid-neg-controller, takes the same JSON and checks,
// and its status solutions.cloud.google.com/hybrid-neg-status has the neg-status format.
// SourceOf decides which pair applies to a Service (and whether its NEGs are hybrid, which
// cloud.google.com/neg gives in GKE's non-GCP mode); both on one Service is an error.
//
// Checks beyond GKE (GKE lets GCE reject these at NEG insert time): a custom NEG name must be a
// valid GCE name, and one Service may not give the same custom name to two ports. Zone entries are
// not validated here; that needs the cluster's region zones and is the controller's job.
package annotation
