package gce_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// untilSleeping blocks until the adapter waits on the fake clock (the pause between two polls:
// nothing else in these tests sets a timer on it).
func untilSleeping(t *testing.T, clk *clocktesting.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the operation waiter never paused on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

// An operation that never finishes is given up exactly at Config.OperationTimeout, measured on
// the adapter's clock from the start of the wait across every poll and pause.
func TestOperationTimeout(t *testing.T) {
	cases := []struct {
		name          string
		poll, timeout time.Duration // 0 timeout: the default
		wantPolls     int
	}{
		{name: "default 5m, polls a minute apart", poll: time.Minute, wantPolls: 5},
		{name: "last pause cut at the deadline", poll: 10 * time.Second, timeout: 35 * time.Second, wantPolls: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
			// Each wait call returns the RUNNING operation after 10ms of real time.
			e := newEnv(t, fakegce.Config{OperationWaitTimeout: 10 * time.Millisecond}, func(c *gce.Config) {
				c.Clock, c.OperationPollInterval, c.OperationTimeout = clk, tc.poll, tc.timeout
			})
			timeout := tc.timeout
			if timeout == 0 {
				timeout = gce.DefaultOperationTimeout
			}
			ctx := testCtx(t)
			addNodes(t, e.srv, zoneA, 1)
			if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
				t.Fatal(err)
			}
			e.srv.ResetRequests()
			e.srv.InjectFault(fakegce.Fault{Method: mAttach, NeverFinish: true, Count: 1})
			done := make(chan error, 1)
			go func() { done <- e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(1)) }()

			for elapsed := time.Duration(0); ; {
				untilSleeping(t, clk)
				if got := e.cloud.OldestOperationAge(); got != elapsed {
					t.Errorf("OldestOperationAge after %v = %v", elapsed, got)
				}
				step := min(tc.poll, timeout-elapsed)
				if elapsed+step < timeout {
					clk.Step(step)
					elapsed += step
					continue
				}
				// One nanosecond before the deadline the waiter is still pausing (its timer
				// has not fired); at the deadline it gives up.
				clk.Step(step - time.Nanosecond)
				if !clk.HasWaiters() {
					t.Fatal("the waiter stopped pausing before the deadline")
				}
				if got := e.cloud.OldestOperationAge(); got != timeout-time.Nanosecond {
					t.Errorf("OldestOperationAge just before the deadline = %v, want %v", got, timeout-time.Nanosecond)
				}
				clk.Step(time.Nanosecond)
				break
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the wait did not give up at the deadline (%d polls)", len(e.requests(mWait)))
			}

			var te *gce.OperationTimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("attach with a stuck operation = %v (%T), want *gce.OperationTimeoutError", err, err)
			}
			if te.Method != mAttachOp || te.After != timeout || !strings.HasPrefix(te.Operation, "operation-") {
				t.Errorf("timeout error = %+v, want method %s, after %v and the operation's name", te, mAttachOp, timeout)
			}
			if c := gce.Classify(err); c != gce.Server || gce.Retry(c) != gce.RetryWithBackoff {
				t.Errorf("class = %v (%v), want Server (RetryWithBackoff)", c, gce.Retry(c))
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the timeout looks like the caller's deadline: %v", err)
			}
			if n := len(e.requests(mWait)); n != tc.wantPolls {
				t.Errorf("%d wait calls, want %d", n, tc.wantPolls)
			}
			if n := len(e.requests(mAttach)); n != 1 {
				t.Errorf("%d attach calls, want 1 (the adapter never re-sends after a timeout)", n)
			}
			if got := e.obs.op(mAttachOp + "/" + gce.ResultTimeout); got != 1 {
				t.Errorf("observed %d timed-out attach operations, want 1", got)
			}
			if got := e.cloud.OldestOperationAge(); got != 0 {
				t.Errorf("OldestOperationAge after the wait = %v, want 0", got)
			}
			if n := e.cloud.InFlight(); n != 0 {
				t.Errorf("%d in-flight slots still taken", n)
			}
		})
	}
}

// gateTransport, once armed, holds every operations.wait request until release is closed,
// after reporting it on arrived; other requests pass at once. Requests still go to the
// emulator.
type gateTransport struct {
	armed   atomic.Bool
	arrived chan struct{}
	release chan struct{}
}

func (g *gateTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if g.armed.Load() && strings.HasSuffix(r.URL.Path, "/wait") {
		g.arrived <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A wait that gets the DONE operation one nanosecond before the deadline succeeds, and the
// operation counts in OldestOperationAge exactly while it is waited for.
func TestOperationDoneJustBeforeTimeout(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	gate := &gateTransport{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, fakegce.Config{OperationLatency: 20 * time.Millisecond}, func(c *gce.Config) {
		c.Clock = clk
		c.HTTPClient = &http.Client{Transport: gate}
	})
	ctx := testCtx(t)
	addNodes(t, e.srv, zoneA, 1)
	if _, err := e.cloud.CreateNEG(ctx, zoneA, gce.NEGSpec{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetRequests()
	gate.armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- e.cloud.AttachNetworkEndpoints(ctx, zoneA, "web", podEndpoints(1)) }()

	// The first poll is held in the gate: the operation is being waited for.
	select {
	case <-gate.arrived:
	case <-ctx.Done():
		t.Fatal("no wait call")
	}
	if got := e.cloud.OldestOperationAge(); got != 0 {
		t.Errorf("OldestOperationAge at the start = %v, want 0", got)
	}
	clk.Step(gce.DefaultOperationTimeout - time.Nanosecond)
	if got := e.cloud.OldestOperationAge(); got != gce.DefaultOperationTimeout-time.Nanosecond {
		t.Errorf("OldestOperationAge = %v, want %v", got, gce.DefaultOperationTimeout-time.Nanosecond)
	}
	// Let the emulator finish the operation, then let the poll through: it answers DONE.
	for {
		if got, _ := e.srv.NEGEndpoints(zoneA, "web"); len(got) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the operation never finished in the emulator")
		}
		time.Sleep(time.Millisecond)
	}
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatalf("attach done just before the deadline = %v, want success", err)
	}
	if n := len(e.requests(mWait)); n != 1 {
		t.Errorf("%d wait calls, want 1", n)
	}
	if got := e.obs.op(mAttachOp + "/success"); got != 1 {
		t.Errorf("observed %d successful attach operations, want 1", got)
	}
	if got := e.cloud.OldestOperationAge(); got != 0 {
		t.Errorf("OldestOperationAge after the wait = %v, want 0", got)
	}
	// Nothing is left waiting on the clock for the deadline.
	if clk.HasWaiters() {
		t.Error("a timer is left on the clock after the wait")
	}
}
