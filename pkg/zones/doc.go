// Package zones maps Kubernetes Nodes to GCE zones and instances and decides which nodes are
// candidates for L7 load balancing, following GKE's NEG controller
// (kubernetes/ingress-gce pkg/utils/zonegetter, CandidateNodesFilter).
//
// Invariants:
//   - A Node's zone and instance come from spec.providerID (gce://project/zone/instance) when it is
//     valid; otherwise the zone comes from the topology.kubernetes.io/zone label (then the
//     deprecated failure-domain.beta.kubernetes.io/zone label) and the instance is the node name.
//     GKE uses providerID only; the label fallback lets non-GCE-provisioned nodes still be placed.
//   - A Node is a candidate only when it has a zone, is Ready, carries none of the exclusion
//     labels or the cluster-autoscaler deletion taint; otherwise Reason says why (first failing
//     check in the order of the Reason constants). spec.unschedulable is not consulted, as in GKE.
//   - CandidateZones is sorted and duplicate-free. NEGs follow candidate zones, not pods.
//   - For hybrid (NON_GCP_PRIVATE_IP_PORT) NEGs, Mapping places nodes instead of FromNode: the
//     zone label is mapped to a GCE zone (--zone-mapping, --default-neg-zone), providerID is
//     ignored and Instance stays empty; candidacy follows the same rules. ParseZoneMapping,
//     ParseZoneList and Mapping.Validate check the flags (every zone in --region).
//   - Preprovision resolves the "zones" field of cloud.google.com/neg (NEG zone
//     pre-provisioning) against the region's zones as GCE lists them: "*" alone is every zone,
//     names must be zones of the region; any bad entry makes the whole field an error.
//   - Pure functions, no globals; inputs are not modified. The one stateful type,
//     PlacementCache, keeps the placement computed from the node cache until the nodes change,
//     for Service syncs to share.
package zones
