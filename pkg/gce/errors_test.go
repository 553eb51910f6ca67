package gce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
)

func apiErr(code int, reason, msg string) *googleapi.Error {
	e := &googleapi.Error{Code: code, Message: msg}
	if reason != "" {
		e.Errors = []googleapi.ErrorItem{{Reason: reason, Message: msg}}
	}
	return e
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Success},
		{"404 notFound", apiErr(404, "notFound", "The resource 'projects/p/zones/z/networkEndpointGroups/x' was not found"), NotFound},
		{"404 without reason", apiErr(404, "", "not found"), NotFound},
		{"wrapped 404", fmt.Errorf("getting NEG: %w", apiErr(404, "notFound", "x")), NotFound},
		{"double wrapped 404", fmt.Errorf("a: %w", fmt.Errorf("b: %w", apiErr(404, "notFound", "x"))), NotFound},
		{"409 alreadyExists", apiErr(409, "alreadyExists", "The resource 'projects/p/...' already exists"), AlreadyExists},
		{"409 without reason", apiErr(409, "", "exists"), AlreadyExists},
		{"429", apiErr(429, "", "Too Many Requests"), RateLimited},
		{"429 rateLimitExceeded", apiErr(429, "rateLimitExceeded", "Quota exceeded for quota group 'ReadGroup'"), RateLimited},
		{"403 rateLimitExceeded", apiErr(403, "rateLimitExceeded", "Quota exceeded for quota group 'ReadGroup'"), RateLimited},
		{"403 userRateLimitExceeded", apiErr(403, "userRateLimitExceeded", "slow down"), RateLimited},
		{"rate limit reason wins in second item", &googleapi.Error{Code: 403, Errors: []googleapi.ErrorItem{
			{Reason: "forbidden"}, {Reason: "rateLimitExceeded"}}}, RateLimited},
		{"403 quotaExceeded", apiErr(403, "quotaExceeded", "Quota 'NETWORK_ENDPOINT_GROUPS' exceeded"), QuotaExceeded},
		{"op QUOTA_EXCEEDED", apiErr(403, "QUOTA_EXCEEDED", "Quota exceeded"), QuotaExceeded},
		{"400 resourceInUseByAnotherResource", apiErr(400, "resourceInUseByAnotherResource",
			"The network_endpoint_group resource 'projects/p/zones/z/networkEndpointGroups/n' is already being used by 'projects/p/global/backendServices/bs'"), InUse},
		{"op RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", apiErr(400, "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE", "in use"), InUse},
		{"400 message only being used by", apiErr(400, "", "The resource is already being used by 'x'"), InUse},
		{"400 invalid being used by", apiErr(400, "invalid", "The resource is already being used by 'x'"), InUse},
		{"400 resourceNotReady", apiErr(400, "resourceNotReady", "The resource 'projects/p/global/backendServices/bs' is not ready"), NotReady},
		{"412 conditionNotMet", apiErr(412, "conditionNotMet", "Invalid fingerprint"), Conflict},
		{"412 without reason", apiErr(412, "", "precondition"), Conflict},
		{"400 invalid", apiErr(400, "invalid", "Invalid value for field 'resource.ipAddress': '10.0.0.13'."), Invalid},
		{"400 badRequest", apiErr(400, "badRequest", "bad"), Invalid},
		{"400 without reason", apiErr(400, "", "bad"), Invalid},
		{"500 backendError", apiErr(500, "backendError", "Internal error"), Server},
		{"503", apiErr(503, "", "unavailable"), Server},
		{"op without status code", operationError(&compute.Operation{Status: "DONE", Error: &compute.OperationError{
			Errors: []*compute.OperationErrorErrors{{Code: "INTERNAL_ERROR", Message: "boom"}}}}), Server},
		{"403 forbidden", apiErr(403, "forbidden", "Required 'compute.networkEndpointGroups.create' permission"), Permanent},
		{"401", apiErr(401, "authError", "Invalid Credentials"), Permanent},
		{"401 required (no credentials), not Invalid", apiErr(401, "required", "Request is missing required authentication credential."), Permanent},
		{"url error", &url.Error{Op: "Post", URL: "http://x", Err: syscall.ECONNREFUSED}, Server},
		{"net op error", fmt.Errorf("x: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), Server},
		{"unexpected EOF", fmt.Errorf("decode: %w", io.ErrUnexpectedEOF), Server},
		{"econnreset", syscall.ECONNRESET, Server},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), Server},
		{"url deadline", &url.Error{Op: "Get", URL: "http://x", Err: context.DeadlineExceeded}, Server},
		{"canceled", fmt.Errorf("call: %w", context.Canceled), Canceled},
		{"url canceled", &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}, Canceled},
		{"operation lost", &OperationLostError{Operation: "op", Err: apiErr(404, "notFound", "op")}, Server},
		{"wrapped operation lost", fmt.Errorf("x: %w", &OperationLostError{Operation: "op", Err: apiErr(404, "notFound", "op")}), Server},
		{"operation timeout", &OperationTimeoutError{Operation: "op", Method: "m", After: time.Minute}, Server},
		{"wrapped operation timeout", fmt.Errorf("x: %w", &OperationTimeoutError{Operation: "op", Method: "m", After: time.Minute}), Server},
		// The outcome is unknown whatever the last poll said.
		{"operation timeout after a 403 poll", &OperationTimeoutError{Operation: "op", Err: apiErr(403, "forbidden", "x")}, Server},
		{"plain error", errors.New("something"), Permanent},
		{"batch size", fmt.Errorf("x: %w", ErrBatchSize), Permanent},
		{"fenced", fmt.Errorf("attach: %w", &FencedError{Method: "m", Reason: "r"}), Fenced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestPredicates(t *testing.T) {
	nf := fmt.Errorf("w: %w", apiErr(404, "notFound", "x"))
	if !IsNotFound(nf) || IsInUse(nf) || IsRateLimited(nf) {
		t.Errorf("predicates wrong for %v", nf)
	}
	checks := []struct {
		name string
		pred func(error) bool
		err  error
	}{
		{"IsAlreadyExists", IsAlreadyExists, apiErr(409, "alreadyExists", "x")},
		{"IsInUse", IsInUse, apiErr(400, "resourceInUseByAnotherResource", "x")},
		{"IsRateLimited", IsRateLimited, apiErr(403, "rateLimitExceeded", "x")},
		{"IsQuotaExceeded", IsQuotaExceeded, apiErr(403, "quotaExceeded", "x")},
		{"IsInvalid", IsInvalid, apiErr(400, "invalid", "x")},
		{"IsConflict", IsConflict, apiErr(412, "conditionNotMet", "x")},
		{"IsRetryable", IsRetryable, apiErr(503, "", "x")},
	}
	for _, c := range checks {
		if !c.pred(c.err) {
			t.Errorf("%s(%v) = false", c.name, c.err)
		}
		if c.pred(nil) {
			t.Errorf("%s(nil) = true", c.name)
		}
	}
}

func TestRetry(t *testing.T) {
	want := map[Class]RetryPolicy{
		Success:       NoRetry,
		NotFound:      NoRetry,
		AlreadyExists: NoRetry,
		RateLimited:   RetryWithBackoff,
		QuotaExceeded: RetryLater,
		InUse:         RetryLater,
		NotReady:      RetryWithBackoff,
		Conflict:      RetryWithBackoff,
		Invalid:       NoRetry,
		Server:        RetryWithBackoff,
		Permanent:     NoRetry,
		Canceled:      NoRetry,
		Fenced:        RetryLater,
	}
	if len(want) != len(classNames) {
		t.Fatalf("table covers %d classes, there are %d", len(want), len(classNames))
	}
	for c, p := range want {
		if got := Retry(c); got != p {
			t.Errorf("Retry(%v) = %v, want %v", c, got, p)
		}
		if c.String() == fmt.Sprintf("Class(%d)", int(c)) {
			t.Errorf("class %d has no name: %q", int(c), c.String())
		}
	}
	if got := Class(99).String(); got != "Class(99)" {
		t.Errorf("unknown class String() = %q", got)
	}
}

func TestOperationError(t *testing.T) {
	if err := operationError(&compute.Operation{Status: "DONE"}); err != nil {
		t.Fatalf("operationError(no error) = %v", err)
	}
	op := &compute.Operation{
		Status:              "DONE",
		HttpErrorStatusCode: 403,
		HttpErrorMessage:    "FORBIDDEN",
		Error: &compute.OperationError{Errors: []*compute.OperationErrorErrors{
			{Code: "QUOTA_EXCEEDED", Message: "Quota 'NETWORK_ENDPOINT_GROUPS' exceeded. Limit: 10.0"},
			{Code: "OTHER", Message: "second"},
		}},
	}
	err := operationError(op)
	var gerr *googleapi.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("operationError returned %T, want *googleapi.Error", err)
	}
	if gerr.Code != 403 || gerr.Message != "FORBIDDEN: Quota 'NETWORK_ENDPOINT_GROUPS' exceeded. Limit: 10.0" {
		t.Errorf("got code %d message %q", gerr.Code, gerr.Message)
	}
	if len(gerr.Errors) != 2 || gerr.Errors[0].Reason != "QUOTA_EXCEEDED" || gerr.Errors[1].Message != "second" {
		t.Errorf("got items %+v", gerr.Errors)
	}
	if Classify(err) != QuotaExceeded {
		t.Errorf("Classify = %v, want QuotaExceeded", Classify(err))
	}
	op.HttpErrorStatusCode = 0
	op.HttpErrorMessage = ""
	gerr = operationError(op).(*googleapi.Error)
	if gerr.Code != 500 || gerr.Message != op.Error.Errors[0].Message {
		t.Errorf("without status: code %d message %q", gerr.Code, gerr.Message)
	}
}

func TestResultLabel(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, "success"},
		{apiErr(429, "rateLimitExceeded", "x"), "RateLimited"},
		{&OperationLostError{Operation: "op", Err: apiErr(404, "notFound", "op")}, "Server"},
		{fmt.Errorf("x: %w", &OperationTimeoutError{Operation: "op", Method: "m", After: time.Minute}), ResultTimeout},
	}
	for _, tt := range tests {
		if got := resultLabel(tt.err); got != tt.want {
			t.Errorf("resultLabel(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
