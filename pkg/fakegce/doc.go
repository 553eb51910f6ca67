// Package fakegce is an in-memory Compute Engine emulator served over real HTTP, for tests and
// local clusters. It speaks the JSON of the Compute v1 REST API so that the real
// google.golang.org/api/compute/v1 client can be pointed at it:
//
//	s, base := fakegce.NewTestServer(t, fakegce.Config{})
//	svc, _ := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
//
// cmd/fakegce serves the same engine as a standalone process. Production code must not import
// this package.
//
// # Surface
//
// One http.Handler serves these trees; any other path is answered with a loud 404 that names it
// (so a client with a mis-set endpoint fails at once):
//
//   - /compute/v1/projects/{project}/...: zones (list, get), regions (list, get), networks and
//     subnetworks (get, list, insert; a "default" network and a "default" subnetwork in the region
//     exist; stack types and internal IPv6 ranges, see IPv6 below), instances (insert, get, list, delete, aggregatedList), zonal networkEndpointGroups
//     (insert, get, list, aggregatedList, delete, attachNetworkEndpoints, detachNetworkEndpoints,
//     listNetworkEndpoints), backendServices and regionBackendServices (insert, get, list, update,
//     patch, delete, getHealth), healthChecks and regionHealthChecks (insert, get, list, update,
//     patch, delete), and zone/region/global operations (get, wait). Only the configured project,
//     region and zones exist; other ones are 404.
//   - /computeMetadata/v1/...: the metadata server (see metadata.go), for
//     cloud.google.com/go/compute/metadata and Application Default Credentials (GCE_METADATA_HOST
//     = the listener's host:port). Requests need "Metadata-Flavor: Google".
//   - /admin/...: the admin API below.
//   - With Config.Auth (auth.go), Google's token endpoints for Workload Identity Federation:
//     the STS token exchange at POST /v1/token (form: grant_type token-exchange, subject_token,
//     subject_token_type, audience, scope → access_token) and IAM Credentials at POST
//     /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken (bearer: an issued token →
//     accessToken, expireTime). An external_account credential file whose token_url and
//     service_account_impersonation_url point there lets the real client libraries
//     authenticate. AuthConfig checks the subject token (a value or a file read at each
//     exchange), the audience and the service accounts; AuthConfig.Required makes every Compute
//     request need a live issued token (else 401 "required" / "authError", Google's texts), and
//     the request log records the Principal that made each call.
//
// # Semantics and the emulator's choices
//
//   - Operations. Every mutation validates synchronously (googleapi errors: 404 notFound,
//     409 alreadyExists, 400 invalid, 400 resourceInUseByAnotherResource, 412 conditionNotMet),
//     then returns an Operation that stays RUNNING for Config.OperationLatency (0: DONE in the
//     response itself). The mutation's effect becomes visible when, and not before, the operation
//     is DONE. Operations complete in the order they were started. If the state changed meanwhile
//     so that the mutation no longer applies (e.g. two inserts of one name), the operation ends
//     DONE with error.errors[].code (RESOURCE_ALREADY_EXISTS, RESOURCE_NOT_FOUND, ...) and
//     httpErrorStatusCode/httpErrorMessage, like every failed operation. wait blocks until DONE,
//     Config.OperationWaitTimeout (2 minutes, as GCE), the request's cancellation or Close.
//   - requestId. A mutation whose requestId (a non-zero UUID, else 400 invalid) was seen within the
//     last hour (and among the last 100,000 ids) returns the original operation and changes
//     nothing; clientOperationId carries the requestId. How long GCE remembers ids is
//     [unverified against real GCE].
//   - Links. Returned links use https://www.googleapis.com/compute/v1/projects/...; inputs may be
//     names, partial or full URLs and are compared by the suffix starting at "projects/"
//     (Backend.group alone must be a full URL, as documented).
//   - NEG endpoints. Identity is (instance, ipAddress, port, ipv6Address); listing order is by
//     IP, port, instance, IPv6; page tokens encode the last key (all four fields), so paging is
//     O(page) and stable under change. Attach checks the instance exists in the NEG's zone, has
//     an interface in the NEG's network (and subnetwork, if set), and owns the IP (primary IP or
//     alias range; omitted IP = primary IP, unless ipv6Address is given) and the IPv6 address
//     (see IPv6 below); the batch is at most Config.MaxEndpointsPerCall (the de-facto 500 batch size, not a
//     documented limit) and the NEG at most Config.MaxEndpointsPerNEG (10,000): all 400 invalid,
//     synchronous (the capacity error being synchronous is the emulator's choice). Attaching an
//     attached endpoint and detaching an absent one are no-ops unless Config.StrictEndpointOps
//     (400 invalid) — real GCE [unverified]. Deleting an instance removes its endpoints
//     [unverified].
//   - IPv6 (ipv6.go; ipv6_test.go and ipv6_health_test.go have one row per rule). Networks may
//     have an internal (ULA) IPv6 range; subnetworks and interfaces a stackType (IPV4_ONLY by
//     default, IPV4_IPV6, IPV6_ONLY); dual-stack and IPv6-only subnetworks need a custom-mode
//     network with internal IPv6 and ipv6AccessType INTERNAL (EXTERNAL is not emulated). An
//     interface with IPv6 owns its internal IPv6 range (ipv6Address/internalIpv6PrefixLength,
//     a /96 allocated from the subnetwork if not given) and its aliasIpv6Ranges.
//     Config.DefaultStackType makes the default network dual-stack or IPv6-only. An endpoint's
//     ipv6Address must be an IPv6 address the instance owns (400 invalid, the IPv4 message's
//     shape), and is refused when the interface's subnetwork is IPV4_ONLY [unverified message];
//     ipv6Address without ipAddress is an IPv6-only endpoint, allowed in dual-stack and
//     IPv6-only subnetworks [unverified]. Attaching an endpoint that shares (instance, ipAddress,
//     port) or (instance, ipv6Address, port) with a different attached endpoint (or one of the
//     same batch) is 400 invalid: a pod is in a NEG as its IPv4-only or its dual-stack endpoint,
//     not both — inferred from ingress-gce's dual-stack migrator, which detaches one before
//     attaching the other [unverified]. Detach matches all four fields.
//   - Hybrid (NON_GCP_PRIVATE_IP_PORT) NEGs (hybrid_test.go has one row per rule): network
//     optional (default network, as documented), subnetwork refused [unverified]; endpoints need
//     an IPv4 ipAddress and a port (or defaultPort) and refuse instance [unverified] and
//     ipv6Address [unverified]; any IPv4 range is accepted (which ranges GCE accepts is
//     [unverified]); the same per-call and per-NEG caps (the per-NEG value for hybrid NEGs is
//     [unverified]); health through the same fixed/probe modes; identity (ip, port).
//     fqdn (NON_GCP_FQDN_PORT only) and clientDestinationPort (GCE_VM_IP_PORTMAP only) are
//     refused on every type, as documented. aggregatedList answers every zone plus "regions/<region>" and "global", empty
//     scopes with a NO_RESULTS_ON_PAGE warning.
//   - Backend services: fingerprint changes on every write; update needs the current one, patch
//     (JSON merge patch) accepts none [unverified] but rejects a stale one, both 412
//     conditionNotMet; GET sends it as ETag and If-Match is honoured. At most 50 backends; group
//     a full URL of an existing NEG; zonal and hybrid NEG backends take only RATE (with maxRate
//     or maxRatePerEndpoint) or CONNECTION (with maxConnections or maxConnectionsPerEndpoint),
//     and HTTP/HTTPS/HTTP2 services reject CONNECTION; hybrid NEGs are refused by passthrough
//     services (scheme INTERNAL, or EXTERNAL on a regional service). A NEG used by a (regional) backend service and
//     a health check used by one cannot be deleted (400 resourceInUseByAnotherResource).
//   - Health (health.go, probe.go): only endpoints of NEGs that are backends of a health-checked
//     backend service have health entries: healthState for the IPv4 address, ipv6HealthState for
//     the IPv6 one, each when the service checks that family (ipAddressSelectionPolicy:
//     IPV4_ONLY, the default, IPv4; IPV6_ONLY IPv6; PREFER_IPV6 both); an endpoint with no
//     checked address reports healthState UNKNOWN [unverified]. Config.HealthMode "fixed"
//     reports HEALTHY after Config.FixedHealthyDelay; "probe" really probes each address through
//     the emulated VPC (LoopbackFor: 10.A.B.C is reached at 127.A.B.C, an fd00::/8 address at
//     127.X.Y.Z from its last three bytes; nothing else is reachable; no traffic leaves 127/8).
//     ForceEndpointHealth overrides either, for both families.
//   - Rate quota (quota.go), off unless Config.Quota: GCE's documented groups (default
//     "Queries" = mutations, read_requests = *.get, list_requests = *.list,
//     operation_read_requests = operations get; 1,500 per minute each), counted per project in
//     fixed windows aligned to the minute of QuotaConfig.Now. Over the limit: 403
//     rateLimitExceeded (domain usageLimits), not applied. The method → group table is
//     methodQuota; where the docs are unclear (listNetworkEndpoints, getHealth, aggregatedList,
//     operations wait) the entry is marked [unverified against real GCE].
//   - Load balancer (lb.go): AddFrontend serves a backend service on a loopback port, proxying
//     HTTP round robin to the endpoints its health check reports HEALTHY (a service without a
//     health check gets no traffic), at the address its ipAddressSelectionPolicy picks (IPv4 by
//     default; IPV6_ONLY the IPv6 one; PREFER_IPV6 the IPv6 one if HEALTHY, else IPv4), through
//     LoopbackFor, never outside 127.0.0.0/8. A detached
//     endpoint (or a NEG leaving the service) gets no new requests from the moment the
//     operation applies; requests in flight may finish within
//     connectionDraining.drainingTimeoutSec and are then cut. No healthy endpoint: 502
//     "no healthy upstream". Counters per frontend: FrontendStats.
//
// # Admin API
//
// JSON in and out; errors are {"error": "..."} with 400 (bad input) or 404 (unknown route).
// Each route has a Go method on Server.
//
//	GET    /admin/healthz                  {"status":"ok"}
//	GET    /admin/state                    StateDump: networks, subnetworks, instances, NEGs with endpoints, backend services, health checks, operation counts (State)
//	GET    /admin/counts                   requests per method id, e.g. {"compute.zoneOperations.wait":3} (Counts)
//	DELETE /admin/counts                   zero the counters (ResetCounts)
//	GET    /admin/requests                 request log, oldest first: method id, HTTP method, path, query, requestId, Authorization, status (Requests)
//	DELETE /admin/requests                 empty the log (ResetRequests)
//	GET    /admin/faults                   active faults (Faults)
//	POST   /admin/faults                   add a Fault, e.g. {"method":"compute.networkEndpointGroups.attachNetworkEndpoints","code":429,"rate":0.2} (InjectFault)
//	DELETE /admin/faults                   remove all faults (ClearFaults)
//	GET    /admin/quota                    rate quota usage per group (Quota); also "quota" in /admin/state
//	POST   /admin/quota                    turn the quota on: {"limits":{"default":3000}} (SetQuota)
//	DELETE /admin/quota                    turn it off (SetQuota(nil))
//	POST   /admin/instances                add a VM at once: {"zone":"us-central1-a","name":"node-1","ip":"10.128.0.5","aliasCIDRs":["10.4.1.0/24"]}; dual-stack: also "ipv6":"fd20::4001:0:0/96" (AddInstance)
//	POST   /admin/health                   force an endpoint's health: {"zone":"us-central1-a","neg":"web","instance":"node-1","ipAddress":"10.4.1.7","port":8080,"state":"UNHEALTHY"}, plus "ipv6Address" for a dual-stack or IPv6-only endpoint; "state":"" clears (ForceEndpointHealth)
//	GET    /admin/backendHealth?region=&name=  endpoints behind a backend service with their health (BackendHealth)
//	POST   /admin/frontends                start a load balancer frontend: {"backendService":"bs","region":"","listen":"127.0.0.1:0"}; answers it with "address" (AddFrontend)
//	GET    /admin/frontends                frontends and their counters (Frontends)
//	DELETE /admin/frontends?address=A      stop a frontend; or body {"address":"A"} (RemoveFrontend)
//
// Method ids are the discovery ids (compute.networkEndpointGroups.attachNetworkEndpoints,
// compute.zoneOperations.wait, compute.regionBackendServices.patch, ...); "metadata" counts
// metadata requests and "fakegce.unknownPath" unmatched paths. A fault's method may be "*".
// See pkg/fakegce/README.md for curl examples.
//
// # Concurrency and cost
//
// All state sits behind one RWMutex held only for map work (JSON is encoded outside it); NEG
// endpoints live in a map plus a lazily merged sorted index. Background work is one goroutine
// completing operations, in probe mode one prober scheduler with bounded probe goroutines, and
// per load balancer frontend its HTTP server; Close stops them all.
package fakegce
