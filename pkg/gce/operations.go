package gce

import (
	"context"
	"fmt"
	"net/http"
	"sync"
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
// The returned error is the synchronous API error, the waiter's error (*OperationTimeoutError
// after Config.OperationTimeout), or the operation's own failure converted to *googleapi.Error
// (see operationError); it is not wrapped here.
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
		op, err = c.waitOperation(ctx, method, op)
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
// *googleapi.Error; method is the mutating method that started op.
//
// It calls the wait method of the operation's scope (zone, region or global — from the
// operation's zone/region fields, else its selfLink), which long-polls for up to ~2 minutes and
// may return early and not DONE; it then polls again, no sooner than OperationPollInterval
// after the previous poll started. Wait calls failing with a transport error, a 5xx or a 429
// are retried with backoff (at most maxWaitFailures in a row); a 404 for the operation yields
// *OperationLostError (class Server: the mutation's outcome is unknown). Every wait call counts
// against the GroupWait bucket and a MaxInFlight slot, and is bounded by WaitCallTimeout and ctx.
//
// The whole wait is bounded by OperationTimeout from now, after which it returns
// *OperationTimeoutError. Between polls the deadline is kept on the adapter's clock (exact, and
// testable with a fake clock: no poll starts and no pause lasts past it); a context with the same
// timeout cuts short what the clock cannot interrupt (a long poll in progress, a wait for the
// rate limiter or an in-flight slot). Giving up does not stop the operation: GCE may still
// complete it later. The caller's next attempt is a new mutation with a new requestId, so it is
// not de-duplicated against this one; the controller lists the NEG again before sending it.
// The operation counts in OldestOperationAge until waitOperation returns.
func (c *Compute) waitOperation(ctx context.Context, method string, op *compute.Operation) (*compute.Operation, error) {
	start := c.clk.Now()
	deadline := start.Add(c.cfg.OperationTimeout)
	defer c.ops.add(start)()
	wctx, cancel := context.WithTimeout(ctx, c.cfg.OperationTimeout)
	defer cancel()
	// stopped returns the error for a wait ended by a context: the caller's error if ctx is
	// done, else the timeout.
	stopped := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for operation %s: %w", op.Name, err)
		}
		return &OperationTimeoutError{Operation: op.Name, Method: method, After: c.cfg.OperationTimeout}
	}
	scope := scopeOf(op.Zone, op.Region, op.SelfLink)
	wait := waitMethod(scope)
	var lastPoll time.Time
	failures := 0
	for op.Status != "DONE" {
		if !lastPoll.IsZero() {
			if err := c.sleepUntil(wctx, c.cfg.OperationPollInterval-c.clk.Since(lastPoll), deadline); err != nil {
				return nil, stopped(err)
			}
		}
		if !c.clk.Now().Before(deadline) {
			return nil, &OperationTimeoutError{Operation: op.Name, Method: method, After: c.cfg.OperationTimeout}
		}
		lastPoll = c.clk.Now()
		var next *compute.Operation
		err := c.call(wctx, GroupWait, wait, c.cfg.WaitCallTimeout, func(ctx context.Context) error {
			var err error
			next, err = c.waitCall(ctx, scope, op.Name)
			return err
		})
		if err == nil {
			failures = 0
			op = next
			continue
		}
		if wctx.Err() != nil {
			return nil, stopped(err)
		}
		if !c.clk.Now().Before(deadline) {
			return nil, &OperationTimeoutError{Operation: op.Name, Method: method, After: c.cfg.OperationTimeout, Err: err}
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
			if err := c.sleepUntil(wctx, c.backoff(failures), deadline); err != nil {
				return nil, stopped(err)
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

// sleepUntil is sleep for d, cut at deadline (on the adapter's clock).
func (c *Compute) sleepUntil(ctx context.Context, d time.Duration, deadline time.Time) error {
	return c.sleep(ctx, min(d, deadline.Sub(c.clk.Now())))
}

// OldestOperationAge returns how long the adapter has been waiting for the oldest operation
// it is still waiting for (0 when none): at most about Config.OperationTimeout, after which
// the wait gives up. Safe for concurrent use.
func (c *Compute) OldestOperationAge() time.Duration {
	oldest, ok := c.ops.oldest()
	if !ok {
		return 0
	}
	return c.clk.Since(oldest)
}

// opTracker holds the start time of every operation being waited for.
type opTracker struct {
	mu      sync.Mutex
	next    uint64
	started map[uint64]time.Time
}

// add registers an operation started at t and returns the function that removes it.
func (t *opTracker) add(at time.Time) (remove func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	id := t.next
	t.started[id] = at
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.started, id)
	}
}

// oldest returns the earliest start time registered, if any. It scans: the operations in
// flight are as many as the callers' concurrent mutations (hundreds at most), and it runs once
// per metrics scrape.
func (t *opTracker) oldest() (first time.Time, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, at := range t.started {
		if !ok || at.Before(first) {
			first, ok = at, true
		}
	}
	return first, ok
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
