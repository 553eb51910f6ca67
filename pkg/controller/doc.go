// Package controller is the heart of neg-controller: it keeps a zonal GCE_VM_IP_PORT network
// endpoint group (NEG) per exposed port and zone for every Service annotated
// cloud.google.com/neg, holding exactly the Service's pod IPs, as GKE's NEG controller does.
// Hybrid connectivity (NON_GCP_PRIVATE_IP_PORT) NEGs, for pods outside Google Cloud, come from
// solutions.cloud.google.com/hybrid-neg, or from cloud.google.com/neg in non-GCP mode
// (HybridConfig, hybrid.go): the same pipeline, with nodes placed by the zone mapping, endpoints
// without instance, NEGs without subnetwork, and the status in hybrid-neg-status for the former.
//
// Its one job is deciding, per Service, which NEGs must exist and which endpoints each must hold.
// The work around it lives in small packages: pkg/annotation parses what the user wrote,
// pkg/wanted turns it (and the Ingresses) into the NEGs a Service asks for and may have,
// pkg/zones and pkg/endpoints turn nodes and EndpointSlices into zones and endpoints,
// pkg/negindex knows which NEGs exist in GCE and which of them are ours (negindex.Rule),
// pkg/negsync owns each NEG's endpoints and the calls that change them (pkg/plan decides what
// and when), pkg/keyqueue runs the workers (pkg/backoff.Keyed paces a failing Service's
// retries), pkg/negstatus renders and writes neg-status, pkg/svcneg sums a sync up into the
// ServiceNetworkEndpointGroups' conditions (svcneg.Observe) and writes them, pkg/backends the
// backend services, and pkg/metrics times each change to its calls (metrics.Changes). Both
// writers are built in pkg/app and handed in as interfaces: Config.SvcNEG as a value,
// Config.NewBackends as a factory New calls with its BackendHooks (events, requeue), since the
// backend service reconciler calls back into the controller.
//
// What stays here of ownership is what depends on the sync: whether the Service claims a
// custom-named NEG of its own (sync.go claimed: its annotation, this process's use, its
// neg-status or hybrid-neg-status, its ServiceNetworkEndpointGroup), whether a NEG serves a
// Service port (hybrid.go serves), and why a NEG whose description fits is refused (negtask.go
// mismatch). The index records what these need: the verdict, the owning Service, the claimed
// mark.
//
// The path of one EndpointSlice change to the attach call:
//
//  1. handlers.go onSlice: the informer reports the slice; its Service is one the controller
//     cares about, so the change time is noted (propagation metric) and the Service key queued.
//  2. pkg/keyqueue: a worker takes the key (one worker per key at a time) and calls syncKey,
//     which calls sync.
//  3. sync.go sync: asks pkg/wanted which NEGs the Service wants (wanted.Resolver.NEGs;
//     annotation.SourceOf picks the annotation and the NEG type; a user error is a Warning
//     event and nothing is touched), loads the candidate nodes and NEG zones (pkg/zones; for
//     hybrid NEGs zones.Mapping), adds the zones the annotation's "zones" field pre-provisions
//     (preprovision.go), and makes one negTask per NEG (wanted zone × port, plus NEGs of ours
//     no longer wanted).
//  4. negtask.go prepare, per NEG in parallel: the NEG must exist and be ours (pkg/negindex knows
//     every NEG of the project and its Rule decides; a missing one is inserted in the
//     background, create.go) and its endpoints known (negsync.Syncer.Refresh lists it only when
//     unknown or its verify is due).
//  5. status.go writes neg-status when it changed (pkg/negstatus); svcneg.go, at the end of the
//     sync, the ServiceNetworkEndpointGroups (svcnegobserve.go → svcneg.Observe → pkg/svcneg).
//  6. sync.go desiredEndpoints: pkg/endpoints turns the Service's EndpointSlices into the
//     endpoints per port and zone.
//  7. negtask.go reconcile → negsync.Syncer.Apply: under the NEG's lock, pkg/plan computes the
//     attach and detach batches (≤ 500 endpoints each) from desired, current and in flight, and
//     plan.Hold decides which go now (none while a call of that direction is in flight; the
//     pacer while changes keep coming or the budget is short); the endpoints enter the
//     in-flight set and the calls start in the background.
//  8. pkg/negsync runs the attach call (pkg/gce waits for the project's mutation budget, then
//     for the operation), records the outcome in the NEG's state and reports the group of calls
//     to calls.go callsDone, which records the events and the propagation metric and queues the
//     Service again, whose next sync sends what arrived meanwhile.
//
// Invariants.
//   - No attach or detach leaves the controller for an endpoint that already has a call in
//     flight (negsync plans and marks under one lock per NEG).
//   - A NEG's endpoints are listed from GCE only when unknown (first sync after start, after a
//     failed or uncertain call, after the periodic NEG listing returned a size other than the
//     believed endpoint count — drift) or due for a verify (between half of and the whole
//     NEGVerifyPeriod after its last listing, at a point fixed per NEG); otherwise the state kept
//     up to date by our own successful calls is used, so a steady state makes no mutating calls
//     and few reads.
//   - The index of NEGs in GCE is loaded before the first sync, so a restart creates nothing
//     that already exists. A NEG is changed or deleted only when it is ours (negindex.Rule):
//     type GCE_VM_IP_PORT or NON_GCP_PRIVATE_IP_PORT, description naming this cluster, the
//     configured network, and a name this cluster generates for the description's Service port
//     or a custom name that Service claims. An existing custom-named NEG belongs to the Service
//     its description names: no other Service's annotation can take it over (pkg/wanted). A NEG
//     of ours of the other type than the Service's is never used. NEGs of
//     k8s-hybrid-neg-controller are used only with HybridConfig.AdoptHybridControllerNEGs, by
//     the Service they were made for, when its hybrid-neg-status lists them (hybrid.go).
//   - NEG inserts run in the background (create.go), at most a few per Service at a time, so
//     no sync worker waits for an insert operation.
//   - Failures are retried per NEG with exponential backoff (pkg/backoff), never given up; a
//     failing NEG never blocks other NEGs or Services.
//   - A NEG of a zone that lost its candidate nodes is kept, emptied (INACTIVE), as GKE does;
//     only a NEG created for a zone that just the "zones" field asked for (marked so on the
//     NEG) goes once the field drops the zone and no node is there (preprovision.go).
//   - NEGs no longer wanted are deleted with their endpoints (no detach); a NEG still used by a
//     backend service is kept with its endpoints — in step with the Service while it has the
//     port — never emptied (NEGInUse), and its delete retried later. A periodic garbage
//     collection (gc.go) finds NEGs of Services deleted while the controller was down.
package controller
