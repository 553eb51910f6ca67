// Package endpoints turns a Service's EndpointSlices into the endpoints each zonal NEG of one
// Service port should hold (kubernetes/ingress-gce pkg/neg/types EndpointsDataFromEndpointSlices
// and pkg/neg/syncers toZoneNetworkEndpointMap, in GKE's normal mode, with design-lesson 11 applied).
//
// Invariants:
//   - Never fails: an endpoint that cannot be placed is skipped and counted in Result.Skipped by
//     SkipReason; every other endpoint of the NEG is still returned. (GKE's normal mode fails the
//     whole NEG sync instead.)
//   - Terminating endpoints (conditions.terminating == true) are dropped and not counted as
//     skipped; not-ready endpoints are kept (so health checks can pass and readiness gates flip).
//   - Only the first address of an endpoint is used (the EndpointSlice controller writes exactly
//     one address per endpoint), and only from the slices of the families of the Stack: IPv4
//     slices for IPv4, IPv6 slices for IPv6, both for DualStack; an address that is not of its
//     slice's family is skipped.
//   - DualStack: a pod's IPv4 and IPv6 entries for the port pair into one endpoint with both
//     addresses. A pod with only an IPv4 entry gets an IPv4 endpoint if its node has no IPv6 pod
//     range, and otherwise waits (SkipMissingIPv6) — the EndpointSlice controller writes the two
//     slices a moment apart, and attaching it IPv4-only would mean a migration a moment later.
//     A pod with only an IPv6 entry waits for its IPv4 one (SkipMissingIPv4). Waiting pods'
//     one-address endpoints are in Result.Waiting, so that a NEG keeps the endpoint it holds
//     for such a pod (a Service just switched to dual-stack keeps its IPv4 endpoints until
//     the IPv6 slice is written).
//   - The same endpoint from several slices is one endpoint; its pod is the one first in
//     namespace/name order, and it is ready if any copy is ready.
//   - Result.ByZone has a (possibly empty) set for every zone in negZones and no other zone, so a
//     zone with a NEG but no pods yields an empty desired set.
//   - Pure function, no globals; inputs are not modified.
package endpoints
