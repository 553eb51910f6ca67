// Package negsync owns the endpoints of every zonal NEG the controller manages: one object per
// NEG holds what is known of it — the endpoints attached (as last listed, plus the effect of our
// own successful calls since) and when they were listed, the calls in flight, the endpoints GCE
// rejected as invalid, the attach and detach pacers, the consecutive failures, the retry time
// and the last failure message — behind one mutex. Nothing else in the controller keeps
// per-NEG endpoint state.
//
// A Syncer is driven by the controller's Service syncs:
//
//   - Refresh makes a NEG's current endpoints known, listing it from GCE only when they are
//     unknown (first use, after a failed or uncertain call, after drift was found) or its
//     verify is due (between half of and the whole VerifyPeriod after the last listing, at a
//     point fixed per NEG, so verifies spread out);
//   - Apply plans the calls that take the NEG to the desired endpoints (pkg/plan: Compute for
//     what, Hold for when) and starts them in the background; the endpoints enter the in-flight
//     set, under the NEG's lock, before any call leaves, so no endpoint ever has two calls in
//     flight;
//   - each finished group of calls (one direction of one Apply) is reported once through
//     Config.OnDone, which the controller turns into events and a re-sync of the Service;
//   - Created, Fail, Note, DeferDelete and Forget record what the controller's own NEG calls
//     (insert, delete) learnt; Progress and Failure answer the status writers; CheckSizes
//     compares a NEG listing's sizes with what is believed (drift).
//
// The executor splits a batch GCE rejects as invalid in halves, recursively (at most
// maxSplitCalls calls), to apply the valid endpoints and leave out the invalid ones for
// InvalidEndpointRetry.
//
// The Syncer has no goroutine of its own: calls run on the context passed to Apply, and Wait
// returns when none is in flight. Its only dependencies are the three GCE calls of Cloud and a
// clock, so its tests (syncer_test.go) run against an in-memory fake with a fake clock and
// exact call counts.
package negsync
