package fakegce_test

import (
	"context"
	"fmt"
	"testing"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

const benchEndpoints = 100000

// benchEnv is an emulator with one NEG of benchEndpoints endpoints (instance node-1 owns
// 10.0.0.0/8), in a health-checked backend service, reached over HTTP by the real client.
func benchEnv(b *testing.B) (*compute.Service, *fakegce.Server, func(i int) *compute.NetworkEndpoint) {
	b.Helper()
	s, base := fakegce.NewTestServer(b, fakegce.Config{MaxEndpointsPerNEG: 1 << 30})
	svc, err := compute.NewService(context.Background(), option.WithEndpoint(base+"/compute/v1/"), option.WithoutAuthentication())
	if err != nil {
		b.Fatal(err)
	}
	if err := s.AddInstance(zoneA, fakegce.InstanceSpec{Name: "node-1", IP: "10.128.0.2", AliasCIDRs: []string{"10.0.0.0/8"}}); err != nil {
		b.Fatal(err)
	}
	mk := func(i int) *compute.NetworkEndpoint {
		return ep("node-1", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 8080)
	}
	check := func(_ *compute.Operation, err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	check(svc.NetworkEndpointGroups.Insert(project, zoneA, &compute.NetworkEndpointGroup{Name: "big", DefaultPort: 80}).Do())
	check(svc.HealthChecks.Insert(project, &compute.HealthCheck{Name: "hc", Type: "TCP"}).Do())
	check(svc.BackendServices.Insert(project, &compute.BackendService{Name: "bs", HealthChecks: []string{"hc"},
		Backends: []*compute.Backend{negBackend(zoneA, "big")}}).Do())
	for i := 0; i < benchEndpoints; i += 500 {
		batch := make([]*compute.NetworkEndpoint, 500)
		for j := range batch {
			batch[j] = mk(i + j)
		}
		check(svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "big",
			&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: batch}).Do())
	}
	return svc, s, mk
}

// BenchmarkAttach attaches batches of 500 new endpoints to a NEG that already holds 100,000,
// through the real client over HTTP (operation latency 0).
func BenchmarkAttach(b *testing.B) {
	svc, _, mk := benchEnv(b)
	next := benchEndpoints
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := make([]*compute.NetworkEndpoint, 500)
		for j := range batch {
			batch[j] = mk(next)
			next++
		}
		op, err := svc.NetworkEndpointGroups.AttachNetworkEndpoints(project, zoneA, "big",
			&compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: batch}).Do()
		if err != nil || op.Status != "DONE" {
			b.Fatal(op, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/endpoint")
}

// BenchmarkListNetworkEndpoints lists a 100,000-endpoint NEG through the real client over HTTP:
// one 500-endpoint page in the middle, and every page (200 of 500) with and without health.
func BenchmarkListNetworkEndpoints(b *testing.B) {
	svc, _, _ := benchEnv(b)
	ctx := context.Background()
	first, err := svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, "big", &compute.NetworkEndpointGroupsListEndpointsRequest{}).Do()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("page", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l, err := svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, "big",
				&compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: "SKIP"}).PageToken(first.NextPageToken).Do()
			if err != nil || len(l.Items) != 500 {
				b.Fatal(err)
			}
		}
	})
	for _, health := range []string{"SKIP", "SHOW"} {
		b.Run("all-"+health, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				n := 0
				err := svc.NetworkEndpointGroups.ListNetworkEndpoints(project, zoneA, "big",
					&compute.NetworkEndpointGroupsListEndpointsRequest{HealthStatus: health}).Pages(ctx,
					func(l *compute.NetworkEndpointGroupsListNetworkEndpoints) error { n += len(l.Items); return nil })
				if err != nil || n != benchEndpoints {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEndpoints), "ns/endpoint")
		})
	}
}
