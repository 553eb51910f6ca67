// Package controller is the heart of neg-controller: it keeps a zonal GCE_VM_IP_PORT network
// endpoint group (NEG) per exposed port and zone for every Service annotated
// cloud.google.com/neg, holding exactly the Service's pod IPs, as GKE's NEG controller does.
// Hybrid connectivity (NON_GCP_PRIVATE_IP_PORT) NEGs, for pods outside Google Cloud, come from
// solutions.cloud.google.com/hybrid-neg, or from cloud.google.com/neg in non-GCP mode
// (HybridConfig, hybrid.go): the same pipeline, with nodes placed by the zone mapping, endpoints
// without instance, NEGs without subnetwork, and the status in hybrid-neg-status for the former.
//
// Data flow. Informer handlers only turn events into Service keys (EndpointSlice → its
// Service by label, Node → every NEG Service when a node's zone, instance or candidacy
// changes, Ingress → the Services it references). One named, rate-limited work queue holds
// the keys; ConcurrentSyncs workers run sync, which:
//
//  1. parses the annotation (pkg/annotation; annotation.SourceOf picks it and the NEG type) and
//     the Ingresses that reference the Service; a user error records a deduplicated Warning
//     event and stops, leaving GCE untouched;
//  2. finds the NEG zones from the candidate nodes (pkg/zones; for hybrid NEGs zones.Mapping);
//  3. ensures each wanted NEG exists and is ours (ownership.go; never adopting a NEG someone
//     else owns; a missing NEG is inserted in the background and the Service synced again) and
//     knows its current endpoints, in parallel;
//  4. writes the neg-status annotation when it changes;
//  5. computes the desired endpoints from the EndpointSlices (pkg/endpoints) and plans the
//     calls against current ∪ in-flight (pkg/plan, batches ≤ 500), then launches them
//     asynchronously;
//  6. writes a ServiceNetworkEndpointGroup per wanted NEG name when its content changed, and
//     deletes those of NEG names no longer wanted once their NEGs are gone (svcneg.go; no
//     informer: the objects are listed at start and every VerifyPeriod, then kept in
//     memory), and returns.
//
// Invariants.
//   - No attach or detach leaves the controller for an endpoint that already has a call in
//     flight: calls are planned against the in-flight table of each NEG and entered into it
//     before they start.
//   - A NEG's current endpoints are listed from GCE only when unknown (first sync after start,
//     after a failed or uncertain call, after the periodic NEG listing returned a size other
//     than the believed endpoint count — drift.go) or due for a verify — between half of and
//     the whole NEGVerifyPeriod after its last listing, at a point fixed per NEG, for which the
//     sync schedules itself, so verifies spread over the period; otherwise the cache kept up
//     to date by our own successful calls is used, so a steady state makes no mutating calls
//     and few reads.
//   - The index of NEGs in GCE is loaded before the first sync, so a restart creates nothing
//     that already exists. A NEG is changed or deleted only when it is ours (ownership.go):
//     type GCE_VM_IP_PORT or NON_GCP_PRIVATE_IP_PORT, description naming this cluster, the
//     configured network, and a name this cluster generates for the description's Service port
//     or a custom name that Service claims. An existing custom-named NEG belongs to the Service
//     its description names: no other Service's annotation can take it over (wanted.go). A NEG
//     of ours of the other type than the Service's is never used. NEGs of
//     k8s-hybrid-neg-controller are used only with HybridConfig.AdoptHybridControllerNEGs, by
//     the Service they were made for, when its hybrid-neg-status lists them (hybrid.go).
//   - NEG inserts run in the background (create.go), at most a few per Service at a time, so
//     no sync worker waits for an insert operation.
//   - Failures are retried per NEG with exponential backoff (Backoff), never given up; a
//     failing NEG never blocks other NEGs or Services.
//   - NEGs no longer wanted are deleted with their endpoints (no detach); a NEG still used by a
//     backend service is kept with its endpoints — in step with the Service while it has the
//     port — never emptied (NEGInUse), and its delete retried later. A periodic garbage
//     collection finds NEGs of Services deleted while the controller was down.
package controller
