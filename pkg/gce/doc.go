// Package gce is the controller's only way to Compute Engine: the context-first Cloud interface,
// its implementation over google.golang.org/api/compute/v1 (operations waited for, requestIds,
// shared rate budgets served in a fair order, a global cap on in-flight calls) and the classification of GCE errors
// into retry classes. It knows nothing about Kubernetes.
//
// # The adapter
//
// New(ctx, Config) returns *Compute, which implements Cloud. Every HTTP call it makes
//
//   - waits for its method group's cap, if Config.RateLimits sets one, then for the shared
//     budget of its GCE quota group (Config.Budgets, DefaultBudgets; which method draws on
//     which budget is the table MethodGroups); each call — each page of a listing, each
//     operation wait — takes one token. Waiters are served by the priority and tenant of
//     their context (WithPriority, WithTenant): urgent first, background last, tenants
//     round-robin, each tenant's calls in arrival order;
//   - then for one of Config.MaxInFlight slots (waits included), context-aware;
//   - runs under Config.CallTimeout (Config.WaitCallTimeout for operations.wait);
//   - is reported to Config.Observer (ObserveRequest) and fed back into its bucket.
//
// The buckets adapt (AIMD): a RateLimited result halves the bucket's rate (at most once a second,
// never below 0.5 qps) and each success adds back 1/20 of the configured rate.
// Compute.RateLimiterState, ConfiguredQPS and RateLimiterGranted expose the current and
// configured rates and the calls let through.
//
// Why the adaptive limiter is our own (ratelimit.go) and not a library's: golang.org/x/time/rate
// is the token bucket underneath, but it only changes its rate when told to, and nothing decides
// when. client-go's flowcontrol limiters (token bucket, exponential backoff per item) and its
// workqueue rate limiters pace one client or one key at a fixed rate or with a per-item delay;
// none lowers a shared rate on the server's 429 and raises it back on successes. The generated
// google.golang.org/api/compute/v1 client keeps no rate between calls at all. What the
// product needs — one bucket per GCE quota group shared by every NEG, served fairly, halved on
// rateLimitExceeded at most once per burst, recovering additively, with its state exported as
// metrics and driven by an injectable clock — is product logic on top of x/time/rate.
//
// Mutations (insert, delete, attach, detach) carry a fresh UUID v4 requestId. If the mutating call
// fails with a transport error, a 5xx or a 429, the adapter retries it (Config.MaxCallAttempts,
// jittered exponential backoff from Config.RetryBaseDelay) with the same requestId, so that GCE
// de-duplicates a request it already received. Reads are retried the same way. The adapter then
// waits for the operation with the scope's operations.wait (long poll; polls of one operation are
// at least Config.OperationPollInterval apart; failed polls are retried with backoff). A failed
// operation is returned as *googleapi.Error built from httpErrorStatusCode, httpErrorMessage and
// the operation's error codes, so synchronous and asynchronous failures classify alike. An
// operation that vanishes while waited for yields *OperationLostError (class Server). The whole
// wait of one operation is bounded by Config.OperationTimeout (5 min) on Config.Clock; after it
// the mutation fails with *OperationTimeoutError (class Server: the outcome is unknown and GCE may
// still complete the operation later). Compute.OldestOperationAge reports how long the oldest
// operation in flight has been waited for.
//
// # Hybrid NEGs
//
// NEGSpec.Type TypeNonGCPPrivateIPPort creates a hybrid connectivity NEG: network only (a
// subnetwork is refused before any call, ErrHybridSubnetwork), and its endpoints are
// neg.Endpoints without Instance (the instance field is then not sent). Nothing else differs:
// the same calls, batches, operations and errors. NEG.Annotations carries the resource's
// annotations field, where other controllers (k8s-hybrid-neg-controller) mark their NEGs.
//
// # Errors
//
// Errors from Cloud wrap (%w) a *googleapi.Error, a context error or a transport error. Classify
// maps them to a Class and Retry maps a Class to a RetryPolicy:
//
//	Class          Matches                                                  Policy
//	NotFound       404, reason notFound / RESOURCE_NOT_FOUND                NoRetry (success on delete/detach)
//	AlreadyExists  409, reason alreadyExists                                NoRetry (GET, check ownership)
//	RateLimited    429; reason rateLimitExceeded / userRateLimitExceeded    RetryWithBackoff
//	QuotaExceeded  reason quotaExceeded, operation code QUOTA_EXCEEDED      RetryLater
//	InUse          reason resourceInUseByAnotherResource, "being used by"   RetryLater
//	NotReady       reason resourceNotReady                                  RetryWithBackoff
//	Conflict       412, reason conditionNotMet                              RetryWithBackoff (re-GET first)
//	Invalid        400, reasons invalid / badRequest                        NoRetry (split the batch)
//	Server         >=500, transport errors, call deadline, lost operation,  RetryWithBackoff
//	               operation not done within Config.OperationTimeout
//	Permanent      everything else (401, 403 forbidden, unknown errors)     NoRetry
//	Canceled       the caller's context was canceled                        NoRetry
//	Fenced         *FencedError: a closed Fence refused a mutation         RetryLater
//
// Reasons are matched case- and underscore-insensitively, so operation error codes
// (UPPER_SNAKE) and synchronous reasons (lowerCamel) classify alike; a rate-limit reason wins
// over any HTTP code. RetryLater means "the request is fine, something else must change":
// retry on a slow period (minutes) rather than a tight backoff.
package gce
