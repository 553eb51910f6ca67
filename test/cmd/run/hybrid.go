package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"google.golang.org/api/compute/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/test/stack"
)

// `make run HYBRID=1` (--hybrid): the simulated nodes are a cluster outside Google Cloud — no
// Compute Engine instances, no providerID, only the zone labels of another cloud — and the
// controller runs with --neg-type=non-gcp and --zone-mapping, so the sample app's
// cloud.google.com/neg annotation gives NON_GCP_PRIVATE_IP_PORT NEGs. Its pods serve HTTP
// (podsim Serve) and fakegce probes them; the controller adds the NEGs to a health-checked
// EXTERNAL_MANAGED backend service (controller.autoneg.dev/neg), which an emulated load balancer
// frontend serves.

// hybridZones are the simulated nodes' zone labels; eu-west-1<x> maps to <region>-<x>.
var hybridZones = []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}

// hybridBackendService is the backend service the controller wires the hybrid NEGs into.
const hybridBackendService = "web-hybrid"

// gceZoneFor is the GCE zone hybridZoneMapping maps the zone label to.
func gceZoneFor(region, label string) string { return region + "-" + label[len(label)-1:] }

func hybridStackOptions(o stack.Options) stack.Options {
	o.ExternalNodes, o.NodeZones, o.ServePods = true, hybridZones, true
	o.GCE.HealthMode = fakegce.HealthModeProbe
	return o
}

// hybridZoneMapping is the --zone-mapping value: eu-west-1a=<region>-a,….
func hybridZoneMapping(region string) string {
	var pairs []string
	for _, z := range hybridZones {
		pairs = append(pairs, z+"="+gceZoneFor(region, z))
	}
	return strings.Join(pairs, ",")
}

func hybridControllerArgs(region string) []string {
	return []string{
		"--neg-type=non-gcp",
		"--zone-mapping=" + hybridZoneMapping(region),
		"--backend-service-allow=" + hybridBackendService,
	}
}

// checkHybridNEGs returns an error unless every NEG the status lists is a NON_GCP_PRIVATE_IP_PORT
// NEG in a zone --zone-mapping maps to, whose endpoints carry no instance.
func checkHybridNEGs(ctx context.Context, st *stack.Stack, status annotation.Status) error {
	mapped := map[string]bool{}
	for _, z := range hybridZones {
		mapped[gceZoneFor(st.Region, z)] = true
	}
	name := status.NetworkEndpointGroups["80"]
	for _, z := range status.Zones {
		if !mapped[z] {
			return fmt.Errorf("NEG %s in zone %s, which no node's zone label maps to", name, z)
		}
		n, err := st.Compute.NetworkEndpointGroups.Get(st.Project, z, name).Context(ctx).Do()
		if err != nil {
			return fmt.Errorf("NEG %s in %s: %w", name, z, err)
		}
		if n.NetworkEndpointType != "NON_GCP_PRIVATE_IP_PORT" {
			return fmt.Errorf("NEG %s in %s is %s, want NON_GCP_PRIVATE_IP_PORT", name, z, n.NetworkEndpointType)
		}
		eps, err := st.Compute.NetworkEndpointGroups.ListNetworkEndpoints(st.Project, z, name,
			&compute.NetworkEndpointGroupsListEndpointsRequest{}).Context(ctx).Do()
		if err != nil {
			return fmt.Errorf("NEG %s in %s: %w", name, z, err)
		}
		for _, e := range eps.Items {
			if e.NetworkEndpoint.Instance != "" {
				return fmt.Errorf("NEG %s in %s: endpoint %s:%d has instance %s", name, z,
					e.NetworkEndpoint.IpAddress, e.NetworkEndpoint.Port, e.NetworkEndpoint.Instance)
			}
		}
	}
	return nil
}

// serveHybrid creates a health check and an empty global EXTERNAL_MANAGED backend service,
// annotates default/web so the controller adds its NEGs, starts a load balancer frontend for
// the backend service and waits until a request through it succeeds. It returns the
// frontend's address.
func serveHybrid(ctx context.Context, st *stack.Stack, ctrl *stack.Controller) (string, error) {
	say("creating health check and backend service %s; the controller adds the hybrid NEGs to it", hybridBackendService)
	hc := &compute.HealthCheck{Name: hybridBackendService + "-hc", Type: "HTTP", CheckIntervalSec: 1, TimeoutSec: 1,
		HealthyThreshold: 1, UnhealthyThreshold: 2,
		HttpHealthCheck: &compute.HTTPHealthCheck{PortSpecification: "USE_SERVING_PORT", RequestPath: "/"}}
	if _, err := st.Compute.HealthChecks.Insert(st.Project, hc).Context(ctx).Do(); err != nil {
		return "", fmt.Errorf("creating health check: %w", err)
	}
	if err := poll(ctx, 30*time.Second, "health check "+hc.Name, func() (bool, string) {
		_, err := st.Compute.HealthChecks.Get(st.Project, hc.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return "", err
	}
	bs := &compute.BackendService{Name: hybridBackendService, Protocol: "HTTP", LoadBalancingScheme: "EXTERNAL_MANAGED",
		HealthChecks: []string{"https://www.googleapis.com/compute/v1/projects/" + st.Project + "/global/healthChecks/" + hc.Name}}
	if _, err := st.Compute.BackendServices.Insert(st.Project, bs).Context(ctx).Do(); err != nil {
		return "", fmt.Errorf("creating backend service: %w", err)
	}
	if err := poll(ctx, 30*time.Second, "backend service "+bs.Name, func() (bool, string) {
		_, err := st.Compute.BackendServices.Get(st.Project, bs.Name).Context(ctx).Do()
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return "", err
	}
	wiring := fmt.Sprintf(`{"backend_services":{"80":[{"name":%q,"max_rate_per_endpoint":100}]}}`, hybridBackendService)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annotation.AutonegKey: wiring}}})
	if _, err := st.Kube.CoreV1().Services("default").Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return "", fmt.Errorf("annotating default/web: %w", err)
	}
	addr, err := st.GCE.AddFrontend("", hybridBackendService, "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	say("waiting until the load balancer frontend http://%s serves the sample app from the hybrid NEGs", addr)
	err = poll(ctx, 90*time.Second, "a request through the load balancer", func() (bool, string) {
		if ctrl.Exited() {
			return false, "neg-controller exited:\n" + ctrl.LogTail(30)
		}
		code, body, err := get("http://" + addr + "/")
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %q %v", code, body, err)
	})
	return addr, err
}

// get returns the status and body of a GET.
func get(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), err
}

// poll calls cond every 250 ms until it returns true, ctx ends or timeout passes; the error
// then carries cond's last message.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s: %s", timeout, what, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func printHybrid(s *session) {
	zones := append([]string(nil), s.status.Zones...)
	sort.Strings(zones)
	fmt.Printf(`
==> Hybrid mode: the nodes have no GCE instances, only the zone labels %v, mapped by
    --zone-mapping=%s.
    The NEGs of default/web are NON_GCP_PRIVATE_IP_PORT NEGs in %v (endpoints: pod IP + port,
    no instance), backends of the health-checked backend service %s.
    Load balancer frontend: http://%s
      curl -s http://%s/; echo
      curl -s %s/compute/v1/projects/%s/global/backendServices/%s/getHealth -X POST -H 'Content-Type: application/json' -d '{"group":"zones/%s/networkEndpointGroups/%s"}'
`, hybridZones, hybridZoneMapping(s.st.Region), zones, hybridBackendService, s.frontend, s.frontend,
		s.st.GCEURL, s.st.Project, hybridBackendService, zones[0], s.status.NetworkEndpointGroups["80"])
}
