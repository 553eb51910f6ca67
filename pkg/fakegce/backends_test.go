package fakegce_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

func negBackend(zone, name string) *compute.Backend {
	return &compute.Backend{Group: negURL(zone, name), BalancingMode: "RATE", MaxRatePerEndpoint: 100}
}

func TestBackendServiceCRUD(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.insertNEG(zoneA, "neg-a")
	e.insertNEG(zoneB, "neg-b")
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "HTTP",
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/healthz"}}).Do())
	op := e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{
		Name: "bs", Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED",
		HealthChecks: []string{"global/healthChecks/hc"}, Backends: []*compute.Backend{negBackend(zoneA, "neg-a")},
	}).Do())
	if op.TargetLink != linkPfx+"global/backendServices/bs" {
		t.Errorf("op = %+v", op)
	}
	call := e.svc.BackendServices.Get(project, "bs")
	bs, err := call.Do()
	if err != nil {
		t.Fatal(err)
	}
	if bs.Fingerprint == "" || bs.HealthChecks[0] != linkPfx+"global/healthChecks/hc" || bs.SelfLink != linkPfx+"global/backendServices/bs" ||
		bs.Backends[0].CapacityScaler != 1 || bs.Backends[0].Group != negURL(zoneA, "neg-a") {
		t.Errorf("bs = %+v backends[0] %+v", bs, bs.Backends[0])
	}
	if etag := bs.Header.Get("ETag"); etag != bs.Fingerprint {
		t.Errorf("ETag %q, fingerprint %q", etag, bs.Fingerprint)
	}

	// update with the current fingerprint: accepted, new fingerprint.
	fp1 := bs.Fingerprint
	bs.Backends = append(bs.Backends, negBackend(zoneB, "neg-b"))
	e.must(e.svc.BackendServices.Update(project, "bs", bs).Do())
	bs2, _ := e.svc.BackendServices.Get(project, "bs").Do()
	if bs2.Fingerprint == fp1 || len(bs2.Backends) != 2 {
		t.Errorf("after update: fingerprint %q (was %q), %d backends", bs2.Fingerprint, fp1, len(bs2.Backends))
	}
	// stale fingerprint: 412 conditionNotMet, for update and patch.
	bs.Fingerprint = fp1
	_, err = e.svc.BackendServices.Update(project, "bs", bs).Do()
	wantAPIError(t, err, 412, "conditionNotMet")
	_, err = e.svc.BackendServices.Patch(project, "bs", &compute.BackendService{Fingerprint: fp1, TimeoutSec: 10}).Do()
	wantAPIError(t, err, 412, "conditionNotMet")
	// update without fingerprint: 412.
	bs.Fingerprint = ""
	_, err = e.svc.BackendServices.Update(project, "bs", bs).Do()
	wantAPIError(t, err, 412, "conditionNotMet")
	// patch without fingerprint: accepted; backends replaced whole.
	e.must(e.svc.BackendServices.Patch(project, "bs", &compute.BackendService{
		Backends: []*compute.Backend{negBackend(zoneB, "neg-b")}, TimeoutSec: 10}).Do())
	bs3, _ := e.svc.BackendServices.Get(project, "bs").Do()
	if len(bs3.Backends) != 1 || bs3.TimeoutSec != 10 || bs3.Fingerprint == bs2.Fingerprint || bs3.Protocol != "HTTP" || len(bs3.HealthChecks) != 1 {
		t.Errorf("after patch: %+v", bs3)
	}
	// If-Match with a stale ETag: 412; with the current one: accepted.
	patch := e.svc.BackendServices.Patch(project, "bs", &compute.BackendService{TimeoutSec: 20})
	patch.Header().Set("If-Match", bs2.Fingerprint)
	_, err = patch.Do()
	wantAPIError(t, err, 412, "conditionNotMet")
	patch = e.svc.BackendServices.Patch(project, "bs", &compute.BackendService{TimeoutSec: 20})
	patch.Header().Set("If-Match", bs3.Header.Get("ETag"))
	e.must(patch.Do())
	// null clears a field (JSON merge patch).
	e.must(e.svc.BackendServices.Patch(project, "bs", &compute.BackendService{NullFields: []string{"Backends"}}).Do())
	if bs4, _ := e.svc.BackendServices.Get(project, "bs").Do(); len(bs4.Backends) != 0 {
		t.Errorf("backends not cleared: %+v", bs4.Backends)
	}

	l, err := e.svc.BackendServices.List(project).Do()
	if err != nil || len(l.Items) != 1 {
		t.Fatalf("list = %+v, %v", l, err)
	}
	e.must(e.svc.BackendServices.Delete(project, "bs").Do())
	_, err = e.svc.BackendServices.Get(project, "bs").Do()
	wantAPIError(t, err, 404, "notFound")
	_, err = e.svc.BackendServices.Update(project, "bs", bs).Do()
	wantAPIError(t, err, 404, "notFound")
}

func TestBackendValidation(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.insertNEG(zoneA, "neg-a")
	for i := 0; i < 51; i++ {
		e.insertNEG(zoneB, fmt.Sprintf("n%d", i))
	}
	var many []*compute.Backend
	for i := 0; i < 51; i++ {
		many = append(many, negBackend(zoneB, fmt.Sprintf("n%d", i)))
	}
	tests := []struct {
		name     string
		bs       compute.BackendService
		code     int
		reason   string
		contains string
	}{
		{"51 backends", compute.BackendService{Backends: many}, 400, "invalid", "at most 50"},
		{"partial group URL", compute.BackendService{Backends: []*compute.Backend{{Group: "zones/" + zoneA + "/networkEndpointGroups/neg-a", BalancingMode: "RATE", MaxRatePerEndpoint: 1}}}, 400, "invalid", "full URL"},
		{"missing NEG", compute.BackendService{Backends: []*compute.Backend{negBackend(zoneA, "nope")}}, 404, "notFound", "nope"},
		{"duplicate group", compute.BackendService{Backends: []*compute.Backend{negBackend(zoneA, "neg-a"), negBackend(zoneA, "neg-a")}}, 400, "invalid", "Duplicate"},
		{"default UTILIZATION", compute.BackendService{Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a")}}}, 400, "invalid", "RATE and CONNECTION"},
		{"UTILIZATION", compute.BackendService{Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a"), BalancingMode: "UTILIZATION"}}}, 400, "invalid", "RATE and CONNECTION"},
		{"CONNECTION on HTTP", compute.BackendService{Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 5}}}, 400, "invalid", "CONNECTION"},
		{"CONNECTION on HTTPS", compute.BackendService{Protocol: "HTTPS", Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a"), BalancingMode: "CONNECTION"}}}, 400, "invalid", "HTTPS"},
		{"CONNECTION with rate", compute.BackendService{Protocol: "TCP", Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a"), BalancingMode: "CONNECTION", MaxRatePerEndpoint: 5}}}, 400, "invalid", "maxRate"},
		{"capacityScaler 0.05", compute.BackendService{Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a"), BalancingMode: "RATE", MaxRatePerEndpoint: 1, CapacityScaler: 0.05}}}, 400, "invalid", "capacityScaler"},
		{"missing health check", compute.BackendService{HealthChecks: []string{"global/healthChecks/nope"}}, 404, "notFound", "nope"},
		{"two health checks", compute.BackendService{HealthChecks: []string{"global/healthChecks/a", "global/healthChecks/b"}}, 400, "invalid", "one health check"},
		{"regional health check on global service", compute.BackendService{HealthChecks: []string{"regions/us-central1/healthChecks/a"}}, 400, "invalid", "global health check"},
		{"bad protocol", compute.BackendService{Protocol: "SMTP"}, 400, "invalid", "protocol"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.bs.Name = fmt.Sprintf("bs-%d", i)
			_, err := e.svc.BackendServices.Insert(project, &tc.bs).Do()
			ge := wantAPIError(t, err, tc.code, tc.reason)
			if !strings.Contains(ge.Message, tc.contains) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.contains)
			}
		})
	}
	// Accepted: 50 backends, CONNECTION on TCP, capacityScaler 0 (sent explicitly).
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "fifty", Backends: many[:50]}).Do())
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "tcp", Protocol: "TCP", LoadBalancingScheme: "INTERNAL_MANAGED",
		Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-a"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 10,
			CapacityScaler: 0, ForceSendFields: []string{"CapacityScaler"}}}}).Do())
	tcp, err := e.svc.BackendServices.Get(project, "tcp").Do()
	if err != nil || tcp.Backends[0].CapacityScaler != 0 {
		t.Errorf("capacityScaler 0 not kept: %+v %v", tcp.Backends[0], err)
	}
}

func TestInUseProtection(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.insertNEG(zoneA, "neg-g")
	e.insertNEG(zoneA, "neg-r")
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	e.must(e.svc.RegionHealthChecks.Insert(project, region, &compute.HealthCheck{Name: "rhc", Type: "TCP"}).Do())
	e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "gbs", HealthChecks: []string{"hc"},
		Backends: []*compute.Backend{negBackend(zoneA, "neg-g")}}).Do())
	op := e.must(e.svc.RegionBackendServices.Insert(project, region, &compute.BackendService{Name: "rbs", Protocol: "TCP",
		LoadBalancingScheme: "INTERNAL_MANAGED", HealthChecks: []string{linkPfx + "regions/us-central1/healthChecks/rhc"},
		Backends: []*compute.Backend{{Group: negURL(zoneA, "neg-r"), BalancingMode: "CONNECTION", MaxConnectionsPerEndpoint: 10}}}).Do())
	if op.Region != linkPfx+"regions/"+region {
		t.Errorf("regional BS op = %+v", op)
	}
	rbs, err := e.svc.RegionBackendServices.Get(project, region, "rbs").Do()
	if err != nil || rbs.Region != linkPfx+"regions/"+region || rbs.SelfLink != linkPfx+"regions/us-central1/backendServices/rbs" {
		t.Fatalf("regional BS = %+v, %v", rbs, err)
	}

	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"NEG used by global BS", func() error { _, err := e.svc.NetworkEndpointGroups.Delete(project, zoneA, "neg-g").Do(); return err },
			"The network_endpoint_group resource 'projects/test-project/zones/us-central1-a/networkEndpointGroups/neg-g' is already being used by 'projects/test-project/global/backendServices/gbs'"},
		{"NEG used by regional BS", func() error { _, err := e.svc.NetworkEndpointGroups.Delete(project, zoneA, "neg-r").Do(); return err },
			"is already being used by 'projects/test-project/regions/us-central1/backendServices/rbs'"},
		{"global HC in use", func() error { _, err := e.svc.HealthChecks.Delete(project, "hc").Do(); return err },
			"The health_check resource 'projects/test-project/global/healthChecks/hc' is already being used by"},
		{"regional HC in use", func() error { _, err := e.svc.RegionHealthChecks.Delete(project, region, "rhc").Do(); return err },
			"being used by"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ge := wantAPIError(t, tc.call(), http.StatusBadRequest, "resourceInUseByAnotherResource")
			if !strings.Contains(ge.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.msg)
			}
		})
	}
	// Once the services are gone everything can be deleted.
	e.must(e.svc.BackendServices.Delete(project, "gbs").Do())
	e.must(e.svc.RegionBackendServices.Delete(project, region, "rbs").Do())
	e.must(e.svc.NetworkEndpointGroups.Delete(project, zoneA, "neg-g").Do())
	e.must(e.svc.NetworkEndpointGroups.Delete(project, zoneA, "neg-r").Do())
	e.must(e.svc.HealthChecks.Delete(project, "hc").Do())
	e.must(e.svc.RegionHealthChecks.Delete(project, region, "rhc").Do())
}

func TestHealthChecks(t *testing.T) {
	e := newEnv(t, fakegce.Config{})
	e.must(e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "HTTP"}).Do())
	hc, err := e.svc.HealthChecks.Get(project, "hc").Do()
	if err != nil {
		t.Fatal(err)
	}
	if hc.CheckIntervalSec != 5 || hc.TimeoutSec != 5 || hc.HealthyThreshold != 2 || hc.UnhealthyThreshold != 2 ||
		hc.HttpHealthCheck == nil || hc.HttpHealthCheck.RequestPath != "/" || hc.HttpHealthCheck.Port != 80 ||
		hc.SelfLink != linkPfx+"global/healthChecks/hc" {
		t.Errorf("defaults: %+v %+v", hc, hc.HttpHealthCheck)
	}
	hc.CheckIntervalSec = 2
	hc.TimeoutSec = 1
	e.must(e.svc.HealthChecks.Update(project, "hc", hc).Do())
	if got, _ := e.svc.HealthChecks.Get(project, "hc").Do(); got.CheckIntervalSec != 2 || got.Id != hc.Id {
		t.Errorf("after update: %+v", got)
	}
	for _, bad := range []*compute.HealthCheck{
		{Name: "x", Type: "ICMP"},
		{Name: "x", Type: "TCP", CheckIntervalSec: 1, TimeoutSec: 2},
		{Name: "x", Type: "HTTP", HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", Port: 80}},
		{Name: "X", Type: "TCP"},
	} {
		_, err := e.svc.HealthChecks.Insert(project, bad).Do()
		wantAPIError(t, err, 400, "invalid")
	}
	_, err = e.svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do()
	wantAPIError(t, err, 409, "alreadyExists")
	l, err := e.svc.HealthChecks.List(project).Do()
	if err != nil || len(l.Items) != 1 {
		t.Errorf("list = %+v, %v", l, err)
	}
	e.must(e.svc.RegionHealthChecks.Insert(project, region, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	rl, err := e.svc.RegionHealthChecks.List(project, region).Do()
	if err != nil || len(rl.Items) != 1 || rl.Items[0].Region != linkPfx+"regions/"+region {
		t.Errorf("regional list = %+v, %v", rl, err)
	}
	e.must(e.svc.HealthChecks.Delete(project, "hc").Do())
	_, err = e.svc.HealthChecks.Get(project, "hc").Do()
	wantAPIError(t, err, 404, "notFound")
}
