package gce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"google.golang.org/api/googleapi"
)

// Class is the retry class of an error returned by Cloud. See Retry for what each class means
// to a caller and the package documentation for the full table.
type Class int

// Error classes, from the most specific to the catch-all Permanent.
const (
	// Success is the class of a nil error.
	Success Class = iota
	// NotFound: the resource (or its parent) does not exist (404, reason notFound).
	NotFound
	// AlreadyExists: an insert found a resource of that name (409, reason alreadyExists).
	AlreadyExists
	// RateLimited: an API rate limit (429, or reason rateLimitExceeded /
	// userRateLimitExceeded with any code, usually 403).
	RateLimited
	// QuotaExceeded: a resource quota (reason quotaExceeded, operation code QUOTA_EXCEEDED).
	QuotaExceeded
	// InUse: the resource is referenced by another one (400 resourceInUseByAnotherResource, or a
	// message containing "being used by").
	InUse
	// NotReady: the resource is busy with another operation (reason resourceNotReady).
	NotReady
	// Conflict: a precondition such as a fingerprint did not match (412, reason conditionNotMet).
	Conflict
	// Invalid: the request was rejected as malformed (400, reasons invalid / badRequest, e.g. an
	// endpoint IP that does not belong to the instance).
	Invalid
	// Server: a server-side or transport failure (>=500, connection errors, a single call's
	// deadline, an operation that could not be polled or was not done within
	// Config.OperationTimeout). The outcome of a mutation failing so is unknown.
	Server
	// Permanent: anything else (403 permission denied, 401, unknown errors). Retrying without a
	// change elsewhere does not help.
	Permanent
	// Canceled: the caller's context was canceled.
	Canceled
	// Fenced: a Fence's Cloud or BackendServices wrapper refused the mutation (*FencedError) because its Fence is closed;
	// nothing reached GCE. Only an operator's action (and a restart) lifts it.
	Fenced
)

var classNames = [...]string{
	Success:       "Success",
	NotFound:      "NotFound",
	AlreadyExists: "AlreadyExists",
	RateLimited:   "RateLimited",
	QuotaExceeded: "QuotaExceeded",
	InUse:         "InUse",
	NotReady:      "NotReady",
	Conflict:      "Conflict",
	Invalid:       "Invalid",
	Server:        "Server",
	Permanent:     "Permanent",
	Canceled:      "Canceled",
	Fenced:        "Fenced",
}

// String returns the class name, e.g. "RateLimited"; it is also the "result" label the Observer
// receives for failed calls ("success" is used for Success).
func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// RetryPolicy tells a caller what to do with an error of a given Class.
type RetryPolicy int

const (
	// NoRetry: retrying the same request cannot succeed (or there is nothing to retry).
	NoRetry RetryPolicy = iota
	// RetryWithBackoff: transient; retry the same request with the caller's exponential backoff.
	RetryWithBackoff
	// RetryLater: the request is fine but something outside it must change first (a quota is
	// raised, a backend service releases a NEG); retry on a slow period (minutes), not in a tight
	// backoff loop.
	RetryLater
)

// String returns the policy name.
func (p RetryPolicy) String() string {
	switch p {
	case NoRetry:
		return "NoRetry"
	case RetryWithBackoff:
		return "RetryWithBackoff"
	case RetryLater:
		return "RetryLater"
	}
	return fmt.Sprintf("RetryPolicy(%d)", int(p))
}

// Retry returns the retry policy of a class:
//
//	Class          Policy            Caller action
//	Success        NoRetry           done
//	NotFound       NoRetry           success on delete/detach paths; otherwise re-create / re-ensure
//	AlreadyExists  NoRetry           GET and check ownership (never adopt blindly)
//	RateLimited    RetryWithBackoff  the adapter already halved the method's rate; back off
//	QuotaExceeded  RetryLater        resource quota: event + slow retry
//	InUse          RetryLater        a backend service references the NEG: keep it, retry slowly
//	NotReady       RetryWithBackoff  resource busy with another operation
//	Conflict       RetryWithBackoff  re-GET, re-apply, retry (bounded)
//	Invalid        NoRetry           bad request; for attach/detach split the batch to isolate
//	Server         RetryWithBackoff  5xx, transport error, call deadline, lost or timed-out operation
//	Permanent      NoRetry           permission denied and the like: report, wait for a change
//	Canceled       NoRetry           the caller gave up (shutdown)
//	Fenced         RetryLater        mutations are stopped (Fence closed): retry slowly, changes nothing
func Retry(class Class) RetryPolicy {
	switch class {
	case RateLimited, NotReady, Conflict, Server:
		return RetryWithBackoff
	case QuotaExceeded, InUse, Fenced:
		return RetryLater
	default:
		return NoRetry
	}
}

// OperationLostError reports that an operation the adapter was waiting for could not be found
// any more (the wait call answered 404). The outcome of the mutation is unknown, so it is
// classified Server (retry with backoff after re-reading the state), never NotFound.
type OperationLostError struct {
	Operation string
	Err       error
}

func (e *OperationLostError) Error() string {
	return fmt.Sprintf("operation %s lost while waiting: %v", e.Operation, e.Err)
}

func (e *OperationLostError) Unwrap() error { return e.Err }

// OperationTimeoutError reports that an operation was not DONE within Config.OperationTimeout
// of the mutating call returning it. The adapter stopped waiting, not GCE: the operation may
// still complete (or fail) later, so the mutation's outcome is unknown. It is classified Server
// (retry with backoff after re-reading the state), like *OperationLostError. Retrying the same
// call is not made safe by its requestId: the retry is a new logical mutation with a new id, so
// callers list the resource again before deciding what to send.
type OperationTimeoutError struct {
	// Operation is the operation's name; Method the mutating API method id
	// ("networkEndpointGroups.attachNetworkEndpoints").
	Operation, Method string
	// After is the configured deadline that expired (Config.OperationTimeout).
	After time.Duration
	// Err is the last poll's error, if the deadline cut a failing poll short; usually nil.
	Err error
}

func (e *OperationTimeoutError) Error() string {
	msg := fmt.Sprintf("%s: operation %s not done after %s, outcome unknown", e.Method, e.Operation, e.After)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *OperationTimeoutError) Unwrap() error { return e.Err }

// ResultTimeout is the Observer's result label (ObserveOperation) of a mutation whose operation
// was given up after Config.OperationTimeout (its class is Server).
const ResultTimeout = "Timeout"

// normalizeReason folds the lowerCamel reasons of synchronous errors ("quotaExceeded") and the
// UPPER_SNAKE codes of operation errors ("QUOTA_EXCEEDED") into one spelling ("quotaexceeded").
func normalizeReason(r string) string {
	return strings.ToLower(strings.ReplaceAll(r, "_", ""))
}

// reasonClasses maps normalized reasons / operation error codes to classes. Reasons win over
// HTTP codes (a 403 rateLimitExceeded is RateLimited, not Permanent).
var reasonClasses = map[string]Class{
	"ratelimitexceeded":                 RateLimited,
	"userratelimitexceeded":             RateLimited,
	"concurrentoperationsquotaexceeded": RateLimited,
	"quotaexceeded":                     QuotaExceeded,
	"resourceinusebyanotherresource":    InUse,
	"resourcenotready":                  NotReady,
	"conditionnotmet":                   Conflict,
	"notfound":                          NotFound,
	"resourcenotfound":                  NotFound,
	"alreadyexists":                     AlreadyExists,
	"resourcealreadyexists":             AlreadyExists,
	"invalid":                           Invalid,
	"badrequest":                        Invalid,
	"invalidfieldvalue":                 Invalid,
	"invalidparameter":                  Invalid,
	"required":                          Invalid,
}

// Classify returns the class of err. It looks through wrapping (errors.As) for a
// *googleapi.Error — which is what both synchronous API errors and failed operations become —
// and for context and transport errors.
func Classify(err error) Class {
	if err == nil {
		return Success
	}
	var fenced *FencedError
	if errors.As(err, &fenced) {
		return Fenced
	}
	var lost *OperationLostError
	if errors.As(err, &lost) {
		return Server
	}
	var timeout *OperationTimeoutError
	if errors.As(err, &timeout) {
		return Server
	}
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		return classifyAPI(gerr)
	}
	if errors.Is(err, context.Canceled) {
		return Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) || isTransport(err) {
		return Server
	}
	return Permanent
}

func classifyAPI(e *googleapi.Error) Class {
	// Rate limits first: they arrive as 403 or 429 and must slow us down whatever the code.
	best := Permanent
	found := false
	for _, item := range e.Errors {
		c, ok := reasonClasses[normalizeReason(item.Reason)]
		if !ok {
			continue
		}
		if c == RateLimited {
			return RateLimited
		}
		if !found {
			best, found = c, true
		}
	}
	if e.Code == http.StatusTooManyRequests {
		return RateLimited
	}
	// Missing or bad credentials: Google answers 401 with reason "required" (no Authorization
	// header) or "authError". Whatever the reason says, the request itself is fine; it is no
	// invalid batch to split.
	if e.Code == http.StatusUnauthorized {
		return Permanent
	}
	switch e.Code {
	case http.StatusNotFound:
		return NotFound
	case http.StatusConflict:
		if !found || best == AlreadyExists {
			return AlreadyExists
		}
	case http.StatusPreconditionFailed:
		return Conflict
	}
	if (!found || best == Invalid) && mentionsInUse(e) {
		return InUse
	}
	if found {
		return best
	}
	switch {
	case e.Code >= 500:
		return Server
	case e.Code == http.StatusBadRequest:
		return Invalid
	}
	return Permanent
}

// mentionsInUse reports whether the error text says the resource is referenced elsewhere
// ("… is already being used by …"), for errors that lack the resourceInUseByAnotherResource
// reason.
func mentionsInUse(e *googleapi.Error) bool {
	if strings.Contains(e.Message, "being used by") {
		return true
	}
	for _, item := range e.Errors {
		if strings.Contains(item.Message, "being used by") {
			return true
		}
	}
	return false
}

// isTransport reports whether err is a network-level failure of an HTTP call (connection
// refused or reset, truncated body, timeouts), for which no HTTP status was received.
func isTransport(err error) bool {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return true
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// IsNotFound reports whether err is classified NotFound.
func IsNotFound(err error) bool { return Classify(err) == NotFound }

// IsAlreadyExists reports whether err is classified AlreadyExists.
func IsAlreadyExists(err error) bool { return Classify(err) == AlreadyExists }

// IsInUse reports whether err is classified InUse.
func IsInUse(err error) bool { return Classify(err) == InUse }

// IsRateLimited reports whether err is classified RateLimited.
func IsRateLimited(err error) bool { return Classify(err) == RateLimited }

// IsQuotaExceeded reports whether err is classified QuotaExceeded.
func IsQuotaExceeded(err error) bool { return Classify(err) == QuotaExceeded }

// IsInvalid reports whether err is classified Invalid.
func IsInvalid(err error) bool { return Classify(err) == Invalid }

// IsConflict reports whether err is classified Conflict.
func IsConflict(err error) bool { return Classify(err) == Conflict }

// IsRetryable reports whether the class of err calls for a retry with backoff.
func IsRetryable(err error) bool { return Retry(Classify(err)) == RetryWithBackoff }

// resultLabel is the Observer's result label for err: "success", ResultTimeout for an
// operation given up after Config.OperationTimeout, or the class name.
func resultLabel(err error) string {
	if err == nil {
		return "success"
	}
	var timeout *OperationTimeoutError
	if errors.As(err, &timeout) {
		return ResultTimeout
	}
	return Classify(err).String()
}
