package fakegce

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Reasons of synchronous errors (errors[].reason), spelled as Compute Engine spells them.
const (
	reasonNotFound        = "notFound"
	reasonAlreadyExists   = "alreadyExists"
	reasonInvalid         = "invalid"
	reasonInUse           = "resourceInUseByAnotherResource"
	reasonConditionNotMet = "conditionNotMet"
	reasonRateLimit       = "rateLimitExceeded"
	reasonForbidden       = "forbidden"
	reasonBackendError    = "backendError"
)

// apiError is a synchronous error answered in the googleapi envelope, or (through opCode) the
// error of a failed operation.
type apiError struct {
	code    int
	reason  string
	message string
	domain  string // errors[].domain; "" = "global"
	details []any  // optional "details" of the envelope (google.rpc.ErrorInfo, Help)
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.code, e.reason, e.message) }

func errNotFound(resource string) *apiError {
	return &apiError{code: http.StatusNotFound, reason: reasonNotFound, message: fmt.Sprintf("The resource '%s' was not found", resource)}
}

func errAlreadyExists(resource string) *apiError {
	return &apiError{code: http.StatusConflict, reason: reasonAlreadyExists, message: fmt.Sprintf("The resource '%s' already exists", resource)}
}

func errInvalid(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, reason: reasonInvalid, message: fmt.Sprintf(format, args...)}
}

// errInvalidField follows GCE's "Invalid value for field 'resource.x': 'v'. Detail" shape.
func errInvalidField(field string, value any, detail string) *apiError {
	return errInvalid("Invalid value for field '%s': '%v'. %s", field, value, detail)
}

// errInUse is the message of GCE's resourceInUseByAnotherResource, e.g. "The
// network_endpoint_group resource 'projects/...' is already being used by 'projects/...'".
func errInUse(kind, resource, user string) *apiError {
	return &apiError{code: http.StatusBadRequest, reason: reasonInUse,
		message: fmt.Sprintf("The %s resource '%s' is already being used by '%s'", kind, resource, user)}
}

func errConditionNotMet(msg string) *apiError {
	return &apiError{code: http.StatusPreconditionFailed, reason: reasonConditionNotMet, message: msg}
}

// defaultReason is the reason an injected fault uses when none is given.
func defaultReason(code int) string {
	switch code {
	case http.StatusBadRequest:
		return reasonInvalid
	case http.StatusForbidden:
		return reasonForbidden
	case http.StatusNotFound:
		return reasonNotFound
	case http.StatusConflict:
		return reasonAlreadyExists
	case http.StatusPreconditionFailed:
		return reasonConditionNotMet
	case http.StatusTooManyRequests:
		return reasonRateLimit
	}
	return reasonBackendError
}

// opCode is the UPPER_SNAKE operation error code that corresponds to a synchronous reason, used
// when a mutation that was valid when requested fails when its operation completes (e.g. the
// NEG was deleted meanwhile). The codes are the ones real operations carry; which one GCE picks
// in each race is [unverified against real GCE].
func (e *apiError) opCode() string {
	switch e.reason {
	case reasonNotFound:
		return "RESOURCE_NOT_FOUND"
	case reasonAlreadyExists:
		return "RESOURCE_ALREADY_EXISTS"
	case reasonInUse:
		return "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"
	case reasonConditionNotMet:
		return "CONDITION_NOT_MET"
	case reasonInvalid:
		return "INVALID_FIELD_VALUE"
	case reasonRateLimit:
		return "RATE_LIMIT_EXCEEDED"
	}
	return "INTERNAL_ERROR"
}

// opStatusFor is the httpErrorStatusCode used for an injected operation error code when the
// fault names none.
func opStatusFor(code string) int {
	switch code {
	case "QUOTA_EXCEEDED":
		return http.StatusForbidden
	case "RESOURCE_NOT_FOUND":
		return http.StatusNotFound
	case "RESOURCE_ALREADY_EXISTS":
		return http.StatusConflict
	case "CONDITION_NOT_MET":
		return http.StatusPreconditionFailed
	case "RATE_LIMIT_EXCEEDED":
		return http.StatusTooManyRequests
	case "INTERNAL_ERROR", "":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// httpErrorMessage renders a status the way operations carry it in httpErrorMessage
// ("FORBIDDEN", "NOT_FOUND", "PRECONDITION_FAILED").
func httpErrorMessage(code int) string {
	return strings.ToUpper(strings.ReplaceAll(http.StatusText(code), " ", "_"))
}

type errorItem struct {
	Message string `json:"message"`
	Domain  string `json:"domain"`
	Reason  string `json:"reason"`
}

type errorBody struct {
	Code    int         `json:"code"`
	Message string      `json:"message"`
	Errors  []errorItem `json:"errors"`
	Details []any       `json:"details,omitempty"`
}

// writeError answers e in the googleapi error envelope, which the discovery client turns into a
// *googleapi.Error with Code, Message and Errors[].Reason.
func writeError(w http.ResponseWriter, e *apiError) {
	domain := e.domain
	if domain == "" {
		domain = "global"
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.code)
	_ = json.NewEncoder(w).Encode(struct {
		Error errorBody `json:"error"`
	}{errorBody{
		Code:    e.code,
		Message: e.message,
		Errors:  []errorItem{{Message: e.message, Domain: domain, Reason: e.reason}},
		Details: e.details,
	}})
}
