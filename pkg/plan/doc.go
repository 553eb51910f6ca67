// Package plan is the pure diff at the core of NEG syncing: given the endpoints one zonal NEG should
// hold, the endpoints it holds and the endpoints with a call outstanding, it returns the attach and
// detach calls to make. It has no clients, clocks, flags or globals, and never modifies its inputs.
//
// Decision table, per endpoint (D = desired, C = current, F = in flight):
//
//	D  C  F   action
//	1  0  0   attach, unless the NEG would exceed capacity (then counted in OverCapacity)
//	0  1  0   detach
//	1  1  -   nothing (already attached)
//	0  0  -   nothing
//	1  0  1   nothing this round, counted in HeldInFlight
//	0  1  1   nothing this round, counted in HeldInFlight
//
// except for endpoints that change address family (single ↔ dual-stack): an attach that
// conflicts with an endpoint GCE holds waits, and the endpoints it replaces leave in steps (see
// Migration in migrate.go for that table).
//
// Invariants:
//   - An endpoint in flight is never in any batch, so the controller never sends a second call for
//     an endpoint whose attach or detach is still running, and attach and detach of one endpoint
//     never race. The caller resyncs when the outstanding call finishes.
//   - Capacity: |current| - detaches + (in flight and not current) + attaches <= capacity. In-flight
//     endpoints not yet in current are assumed to be attaches that will land; in-flight endpoints
//     already in current get no credit. When room runs out, the lowest endpoints in
//     neg.Endpoint.Less order are attached and the rest counted in OverCapacity. Detaches are never
//     limited.
//   - Output is deterministic: every batch is sorted by neg.Endpoint.Less, batches follow each other
//     in that order, each holds at most batchSize endpoints, and n endpoints use ceil(n/batchSize)
//     batches (all full but the last).
package plan
