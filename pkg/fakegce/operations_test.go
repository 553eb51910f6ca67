package fakegce_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func TestOperationLatencyDefersEffect(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationLatency: 300 * time.Millisecond})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	op, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web", DefaultPort: 80}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != "RUNNING" || op.EndTime != "" {
		t.Errorf("insert returned %s", op.Status)
	}
	// Not visible while RUNNING (the effect shows when the operation is DONE).
	if _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); err == nil {
		if got, _ := e.svc.ZoneOperations.Get(project, zoneA, op.Name).Do(); got.Status != "DONE" {
			t.Error("NEG visible before its operation is DONE")
		}
	}
	start := time.Now()
	done, err := e.svc.ZoneOperations.Wait(project, zoneA, op.Name).Do()
	if err != nil || done.Status != "DONE" || done.Progress != 100 || done.EndTime == "" {
		t.Fatalf("wait = %+v, %v", done, err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("wait took %v", time.Since(start))
	}
	if _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); err != nil {
		t.Errorf("NEG not visible after DONE: %v", err)
	}
	got, err := e.svc.ZoneOperations.Get(project, zoneA, op.Name).Do()
	if err != nil || got.Status != "DONE" || got.Name != op.Name || got.SelfLink != op.SelfLink {
		t.Errorf("get = %+v, %v", got, err)
	}
	_, err = e.svc.ZoneOperations.Get(project, zoneB, op.Name).Do()
	wantAPIError(t, err, 404, "notFound")
}

func TestOperationShape(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	e.insertNEG(zoneA, "web")
	const rid = "0f4c7b5e-8d2a-4b6e-9a41-3c2d1e0f9a8b"
	op, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 80)}}).
		RequestId(rid).Do()
	if err != nil {
		t.Fatal(err)
	}
	if op.Kind != "compute#operation" || op.Status != "DONE" || op.ClientOperationId != rid ||
		op.Zone != linkPfx+"zones/"+zoneA || op.Region != "" || op.TargetLink != negURL(zoneA, "web") ||
		!strings.HasPrefix(op.SelfLink, linkPfx+"zones/"+zoneA+"/operations/") || op.Id == 0 || op.InsertTime == "" {
		t.Errorf("op = %+v", op)
	}

	// Global and regional scopes.
	hc := e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	if hc.Zone != "" || hc.Region != "" || !strings.HasPrefix(hc.SelfLink, linkPfx+"global/operations/") {
		t.Errorf("global op = %+v", hc)
	}
	rhc := e.must(e.svc.RegionHealthChecks.Insert(project, region, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	if rhc.Region != linkPfx+"regions/"+region || !strings.HasPrefix(rhc.SelfLink, linkPfx+"regions/"+region+"/operations/") {
		t.Errorf("regional op = %+v", rhc)
	}
	if _, err := e.svc.GlobalOperations.Get(project, hc.Name).Do(); err != nil {
		t.Error(err)
	}
	if _, err := e.svc.RegionOperations.Wait(project, region, rhc.Name).Do(); err != nil {
		t.Error(err)
	}
}

func TestRequestIDIdempotency(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.addInstance(zoneA, "node-1", "10.128.0.11", "10.4.1.0/24")
	const rid = "3b0d3c43-9f35-4d2e-8a57-0a7f5e2c1b11"
	insert := func() *compute.Operation {
		op, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web", DefaultPort: 80}).
			RequestId(rid).Do()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	first := insert()
	e.must(e.svc.NetworkEndpointGroups.Delete(project, zoneA, "web").Do())
	retry := insert() // same requestId: the original operation, nothing re-applied
	if retry.Name != first.Name || retry.ClientOperationId != rid {
		t.Errorf("retry returned %s, want %s", retry.Name, first.Name)
	}
	if _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); err == nil {
		t.Error("retry with the same requestId re-created the NEG")
	}

	// A retried attach changes nothing either, even after a detach.
	e.insertNEG(zoneA, "web")
	const rid2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	attach := func() *compute.Operation {
		op, err := e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "web",
			&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 80)}}).
			RequestId(rid2).Do()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	a1 := attach()
	e.must(e.svc.NetworkEndpointGroups.DetachNetworkEndpoints(project, zoneA, "web", &compute.NetworkEndpointGroupsDetachEndpointsRequest{
		NetworkEndpoints: []*compute.NetworkEndpoint{ep("node-1", "10.4.1.7", 80)}}).Do())
	if a2 := attach(); a2.Name != a1.Name {
		t.Errorf("attach retry returned a new operation")
	}
	if got, _ := e.s.NEGEndpoints(zoneA, "web"); len(got) != 0 {
		t.Errorf("attach retry re-applied: %v", got)
	}

	for _, bad := range []string{"not-a-uuid", "00000000-0000-0000-0000-000000000000"} {
		_, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "x"}).RequestId(bad).Do()
		wantAPIError(t, err, 400, "invalid")
	}
}

func TestFailedOperation(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.s.InjectFault(fakegce.Fault{Method: "compute.networkEndpointGroups.insert", FailOperation: true, OperationErrorCode: "QUOTA_EXCEEDED",
		Message: "Quota 'NETWORK_ENDPOINT_GROUPS' exceeded.  Limit: 10.0 in region us-central1.", Count: 1})
	op, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web"}).Do()
	if err != nil {
		t.Fatalf("the mutating call itself must succeed: %v", err)
	}
	op, err = e.waitErr(op)
	ge := wantAPIError(t, err, 403, "QUOTA_EXCEEDED")
	if op.Status != "DONE" || op.HttpErrorStatusCode != 403 || op.HttpErrorMessage != "FORBIDDEN" ||
		!strings.Contains(op.Error.Errors[0].Message, "NETWORK_ENDPOINT_GROUPS") {
		t.Errorf("op = %+v, error %v", op, ge)
	}
	if _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); err == nil {
		t.Error("failed operation had an effect")
	}
	// Count exhausted: the next insert works.
	e.insertNEG(zoneA, "web")
}

func TestOperationFailsWhenStateChangedMeanwhile(t *testing.T) {
	// The second insert must arrive while the first is RUNNING: a generous latency.
	e := newEnv(t, fakegce.Config{OperationLatency: 3 * time.Second})
	op1, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	op2, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.waitErr(op1); err != nil {
		t.Fatal(err)
	}
	op2, err = e.waitErr(op2)
	wantAPIError(t, err, 409, "RESOURCE_ALREADY_EXISTS")
	if op2.HttpErrorMessage != "CONFLICT" {
		t.Errorf("op2 = %+v", op2)
	}
}

func TestWaitTimeoutAndCancellation(t *testing.T) {
	e := newEnv(t, fakegce.Config{OperationWaitTimeout: 300 * time.Millisecond})
	e.s.InjectFault(fakegce.Fault{Method: "compute.networkEndpointGroups.insert", NeverFinish: true})
	op, err := e.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web"}).Do()
	if err != nil || op.Status != "RUNNING" {
		t.Fatalf("insert = %+v, %v", op, err)
	}
	start := time.Now()
	got, err := e.svc.ZoneOperations.Wait(project, zoneA, op.Name).Do()
	if err != nil || got.Status != "RUNNING" {
		t.Fatalf("wait = %+v, %v", got, err)
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("wait returned after %v, before its timeout", el)
	}
	// The caller's cancellation ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	e2 := newEnv(t, fakegce.Config{})
	e2.s.InjectFault(fakegce.Fault{Method: "compute.networkEndpointGroups.insert", NeverFinish: true})
	op, err = e2.svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "web"}).Do()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	_, err = e2.svc.ZoneOperations.Wait(project, zoneA, op.Name).Context(ctx).Do()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 30*time.Second {
		t.Errorf("canceled wait = %v after %v", err, time.Since(start))
	}
	if _, err := e.svc.NetworkEndpointGroups.Get(project, zoneA, "web").Do(); err == nil {
		t.Error("never-finishing operation had an effect")
	}
}
