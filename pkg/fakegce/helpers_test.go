package fakegce_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// The metadata client caches the project id per process, so every test uses the default.
const (
	project = fakegce.DefaultProject
	zoneA   = "us-central1-a"
	zoneB   = "us-central1-b"
	zoneC   = "us-central1-c"
	region  = "us-central1"
	linkPfx = "https://www.googleapis.com/compute/v1/projects/" + project + "/"
)

// env is one emulator with a real compute/v1 client pointed at it.
type env struct {
	t    *testing.T
	s    *fakegce.Server
	base string
	svc  *compute.Service
	ctx  context.Context
}

func newEnv(t *testing.T, cfg fakegce.Config) *env {
	t.Helper()
	s, base := fakegce.NewTestServer(t, cfg)
	ctx := context.Background()
	svc, err := compute.NewService(ctx, option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("compute.NewService: %v", err)
	}
	return &env{t: t, s: s, base: base, svc: svc, ctx: ctx}
}

// wait waits for a zonal, regional or global operation until DONE and fails the test on a
// failed operation.
func (e *env) wait(op *compute.Operation) *compute.Operation {
	e.t.Helper()
	op, err := e.waitErr(op)
	if err != nil {
		e.t.Fatalf("operation %s: %v", op.Name, err)
	}
	return op
}

// waitErr waits for the operation and returns its error, if it failed, as a *googleapi.Error
// (the conversion the controller's adapter does).
func (e *env) waitErr(op *compute.Operation) (*compute.Operation, error) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for op.Status != "DONE" {
		if time.Now().After(deadline) {
			e.t.Fatalf("operation %s not DONE in time", op.Name)
		}
		var err error
		switch {
		case op.Zone != "":
			op, err = e.svc.ZoneOperations.Wait(project, last(op.Zone), op.Name).Context(e.ctx).Do()
		case op.Region != "":
			op, err = e.svc.RegionOperations.Wait(project, last(op.Region), op.Name).Context(e.ctx).Do()
		default:
			op, err = e.svc.GlobalOperations.Wait(project, op.Name).Context(e.ctx).Do()
		}
		if err != nil {
			e.t.Fatalf("wait: %v", err)
		}
	}
	if op.Error != nil && len(op.Error.Errors) > 0 {
		return op, &googleapi.Error{Code: int(op.HttpErrorStatusCode), Message: op.HttpErrorMessage,
			Errors: []googleapi.ErrorItem{{Reason: op.Error.Errors[0].Code, Message: op.Error.Errors[0].Message}}}
	}
	return op, nil
}

func last(link string) string { return link[strings.LastIndex(link, "/")+1:] }

// must fails the test on a synchronous error and waits for the operation.
func (e *env) must(op *compute.Operation, err error) *compute.Operation {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("call failed: %v", err)
	}
	return e.wait(op)
}

// wantAPIError asserts err is a *googleapi.Error with code and reason (reason "" = any).
func wantAPIError(t *testing.T, err error, code int, reason string) *googleapi.Error {
	t.Helper()
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		t.Fatalf("got error %v, want googleapi error %d %s", err, code, reason)
	}
	if ge.Code != code || (reason != "" && (len(ge.Errors) == 0 || ge.Errors[0].Reason != reason)) {
		t.Fatalf("got %v (errors %+v), want %d %s", ge, ge.Errors, code, reason)
	}
	return ge
}

func negURL(zone, name string) string {
	return linkPfx + "zones/" + zone + "/networkEndpointGroups/" + name
}

// insertNEG creates a GCE_VM_IP_PORT NEG in the default network.
func (e *env) insertNEG(zone, name string) *compute.NetworkEndpointGroup {
	e.t.Helper()
	e.must(e.svc.NetworkEndpointGroups.Insert(project, zone, &compute.NetworkEndpointGroup{
		Name: name, NetworkEndpointType: "GCE_VM_IP_PORT", DefaultPort: 80}).Do())
	n, err := e.svc.NetworkEndpointGroups.Get(project, zone, name).Do()
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) addInstance(zone, name, ip string, aliases ...string) {
	e.t.Helper()
	if err := e.s.AddInstance(zone, fakegce.InstanceSpec{Name: name, IP: ip, AliasCIDRs: aliases}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) attach(zone, name string, eps ...*compute.NetworkEndpoint) {
	e.t.Helper()
	e.must(e.svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zone, name,
		&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: eps}).Do())
}

func ep(instance, ip string, port int64) *compute.NetworkEndpoint {
	return &compute.NetworkEndpoint{Instance: instance, IpAddress: ip, Port: port}
}

// listAll lists every endpoint (all pages) with the given healthStatus.
func (e *env) listAll(zone, name, health string, pageSize int64) []*compute.NetworkEndpointWithHealthStatus {
	e.t.Helper()
	var out []*compute.NetworkEndpointWithHealthStatus
	call := e.svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zone, name,
		&compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: health})
	if pageSize > 0 {
		call = call.MaxResults(pageSize)
	}
	err := call.Pages(e.ctx, func(l *compute.NetworkEndpointGroupsListNetworkEndpoints) error {
		out = append(out, l.Items...)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// eventually polls cond until it returns "" or the (generous) deadline passes.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %s", timeout, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpDo sends a raw request to the emulator.
func httpDo(t *testing.T, method, url, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}
