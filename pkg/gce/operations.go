package gce

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"k8s.io/klog/v2"
)

// maxWaitFailures bounds consecutive failed wait calls (transport, 5xx, 429) for one operation
// before the waiter gives up with the last error (classified Server or RateLimited).
const maxWaitFailures = 10

// mutation starts a GCE mutation: given a requestId it issues the mutating call and returns its
// operation.
type mutation func(ctx context.Context, requestID string) (*compute.Operation, error)

// mutate runs one logical mutation and waits for its operation.
//
// requestId: every mutation gets a fresh random UUID (v4). If the mutating HTTP call fails
// with a transport error, a 5xx or a 429, it is retried up to Config.MaxCallAttempts times with
// jittered backoff, reusing the same requestId, so that GCE ignores a retry of a request it did
// receive and returns the original operation instead of applying the change twice. A new
// logical mutation (the caller's next attempt after mutate returned) gets a new id.
//
// The returned error is the synchronous API error, the waiter's error, or the operation's own
// failure converted to *googleapi.Error (see operationError); it is not wrapped here.
func (c *Compute) mutate(ctx context.Context, group, method string, fn mutation) (*compute.Operation, error) {
	requestID := uuid.NewString()
	logger := klog.FromContext(ctx).WithValues("method", method, "requestId", requestID)
	ctx = klog.NewContext(ctx, logger)
	start := c.clk.Now()
	var op *compute.Operation
	err := c.callRetry(ctx, group, method, func(ctx context.Context) error {
		var err error
		op, err = fn(ctx, requestID)
		return err
	})
	if err == nil {
		logger.V(4).Info("GCE operation started", "operation", op.Name, "status", op.Status)
		op, err = c.waitOperation(ctx, op)
	}
	d := c.clk.Since(start)
	if c.obs != nil {
		c.obs.ObserveOperation(method, resultLabel(err), d)
	}
	if err != nil {
		logger.V(2).Info("GCE mutation failed", "class", Classify(err).String(), "duration", d, "err", err)
	} else {
		logger.V(4).Info("GCE operation done", "operation", op.Name, "duration", d)
	}
	return op, err
}

// waitOperation waits until op is DONE and returns it, or the operation's failure as
// *googleapi.Error.
//
// It calls the wait method of the operation's scope (zone, region or global — from the
// operation's zone/region fields, else its selfLink), which long-polls for up to ~2 minutes and
// may return early and not DONE; it then polls again, no sooner than OperationPollInterval
// after the previous poll started. Wait calls failing with a transport error, a 5xx or a 429
// are retried with backoff (at most maxWaitFailures in a row); a 404 for the operation yields
// *OperationLostError (class Server: the mutation's outcome is unknown). Every wait call counts
// against the GroupWait bucket and a MaxInFlight slot, and is bounded by WaitCallTimeout and ctx.
func (c *Compute) waitOperation(ctx context.Context, op *compute.Operation) (*compute.Operation, error) {
	scope := scopeOf(op.Zone, op.Region, op.SelfLink)
	method := waitMethod(scope)
	var lastPoll time.Time
	failures := 0
	for op.Status != "DONE" {
		if !lastPoll.IsZero() {
			if err := c.sleep(ctx, c.cfg.OperationPollInterval-c.clk.Since(lastPoll)); err != nil {
				return nil, fmt.Errorf("waiting for operation %s: %w", op.Name, err)
			}
		}
		lastPoll = c.clk.Now()
		var next *compute.Operation
		err := c.call(ctx, GroupWait, method, c.cfg.WaitCallTimeout, func(ctx context.Context) error {
			var err error
			next, err = c.waitCall(ctx, scope, op.Name)
			return err
		})
		if err == nil {
			failures = 0
			op = next
			continue
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for operation %s: %w", op.Name, err)
		}
		switch Classify(err) {
		case NotFound:
			return nil, &OperationLostError{Operation: op.Name, Err: err}
		case Server, RateLimited:
			failures++
			if failures >= maxWaitFailures {
				return nil, fmt.Errorf("waiting for operation %s: giving up after %d failed polls: %w", op.Name, failures, err)
			}
			klog.FromContext(ctx).V(2).Info("Retrying operation wait", "operation", op.Name, "failures", failures, "err", err)
			if err := c.sleep(ctx, c.backoff(failures)); err != nil {
				return nil, fmt.Errorf("waiting for operation %s: %w", op.Name, err)
			}
		default:
			return nil, fmt.Errorf("waiting for operation %s: %w", op.Name, err)
		}
	}
	if err := operationError(op); err != nil {
		return op, err
	}
	return op, nil
}

func waitMethod(s opScope) string {
	switch {
	case s.zone != "":
		return "zoneOperations.wait"
	case s.region != "":
		return "regionOperations.wait"
	}
	return "globalOperations.wait"
}

// waitCall issues one wait call in the operation's scope.
func (c *Compute) waitCall(ctx context.Context, s opScope, name string) (*compute.Operation, error) {
	switch {
	case s.zone != "":
		return c.svc.ZoneOperations.Wait(c.cfg.Project, s.zone, name).Context(ctx).Do()
	case s.region != "":
		return c.svc.RegionOperations.Wait(c.cfg.Project, s.region, name).Context(ctx).Do()
	}
	return c.svc.GlobalOperations.Wait(c.cfg.Project, name).Context(ctx).Do()
}

// operationError converts a DONE operation's error into the *googleapi.Error a synchronous call
// would have returned, so one classifier serves both: Code = httpErrorStatusCode (500 when
// absent), Message = httpErrorMessage + first error message, Errors[].Reason = the operation's
// UPPER_SNAKE error codes. It returns nil for an operation without errors.
func operationError(op *compute.Operation) error {
	if op == nil || op.Error == nil || len(op.Error.Errors) == 0 {
		return nil
	}
	code := int(op.HttpErrorStatusCode)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	first := op.Error.Errors[0]
	msg := first.Message
	if op.HttpErrorMessage != "" {
		msg = op.HttpErrorMessage + ": " + msg
	}
	gerr := &googleapi.Error{Code: code, Message: msg}
	for _, e := range op.Error.Errors {
		gerr.Errors = append(gerr.Errors, googleapi.ErrorItem{Reason: e.Code, Message: e.Message})
	}
	return gerr
}
