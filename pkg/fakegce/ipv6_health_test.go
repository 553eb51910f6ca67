package fakegce_test

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/neg"
)

// policyServices creates, for each ipAddressSelectionPolicy ("" = unset), a backend service
// bs-<policy> using health check hc and NEG web.
func (e *env) policyServices(policies ...string) {
	e.t.Helper()
	for _, p := range policies {
		name := "bs-default"
		if p != "" {
			name = "bs-" + strings.ToLower(strings.ReplaceAll(p, "_", "-"))
		}
		e.must(e.svc.BackendServices.Insert(project, &compute.BackendService{Name: name, HealthChecks: []string{"hc"},
			LoadBalancingScheme: "EXTERNAL_MANAGED", IpAddressSelectionPolicy: p, Backends: []*compute.Backend{negBackend(zoneA, "web")}}).Do())
	}
}

// dualHealths renders, per endpoint (ip/ipv6), each backend service's healthState/ipv6HealthState.
func (e *env) dualHealths() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, it := range e.listAll(zoneA, "web", "SHOW", 0) {
		var parts []string
		for _, h := range it.Healths {
			parts = append(parts, fmt.Sprintf("%s=%s/%s", last(h.BackendService.BackendService), h.HealthState, h.Ipv6HealthState))
		}
		out[it.NetworkEndpoint.IpAddress+"/"+it.NetworkEndpoint.Ipv6Address] = strings.Join(parts, " ")
	}
	return out
}

func TestIPv6HealthByPolicy(t *testing.T) {
	e := dualEnv(t, fakegce.Config{})
	e.attach(zoneA, "web", ep("node-1", "10.64.1.7", 8080), ep6("node-1", "10.64.1.9", "fd20::4001:40:109", 8080),
		ep6("node-1", "", "fd20::4001:40:108", 8080))
	e.must(e.svc.HealthChecks.Insert(project, tcpHC()).Do())
	e.policyServices("", "IPV4_ONLY", "IPV6_ONLY", "PREFER_IPV6")
	_, err := e.svc.BackendServices.Insert(project, &compute.BackendService{Name: "bad", IpAddressSelectionPolicy: "IPV7"}).Do()
	wantAPIError(t, err, 400, "invalid")

	want := map[string]string{
		"10.64.1.7/":                  "bs-default=HEALTHY/ bs-ipv4-only=HEALTHY/ bs-ipv6-only=UNKNOWN/ bs-prefer-ipv6=HEALTHY/",
		"10.64.1.9/fd20::4001:40:109": "bs-default=HEALTHY/ bs-ipv4-only=HEALTHY/ bs-ipv6-only=/HEALTHY bs-prefer-ipv6=HEALTHY/HEALTHY",
		"/fd20::4001:40:108":          "bs-default=UNKNOWN/ bs-ipv4-only=UNKNOWN/ bs-ipv6-only=/HEALTHY bs-prefer-ipv6=/HEALTHY",
	}
	got := e.dualHealths()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s:\n got  %s\n want %s", k, got[k], w)
		}
	}

	gh, err := e.svc.BackendServices.GetHealth(project, "bs-prefer-ipv6", &compute.ResourceGroupReference{Group: negURL(zoneA, "web")}).Do()
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, h := range gh.HealthStatus {
		rows = append(rows, fmt.Sprintf("%s/%s:%d=%s/%s", h.IpAddress, h.Ipv6Address, h.Port, h.HealthState, h.Ipv6HealthState))
	}
	if w := "/fd20::4001:40:108:8080=/HEALTHY 10.64.1.7/:8080=HEALTHY/ 10.64.1.9/fd20::4001:40:109:8080=HEALTHY/HEALTHY"; strings.Join(rows, " ") != w {
		t.Errorf("getHealth = %s\nwant %s", strings.Join(rows, " "), w)
	}

	// Forcing names the whole endpoint and applies to both families.
	dual := neg.Endpoint{Instance: "node-1", IP: "10.64.1.9", IPv6: "fd20::4001:40:109", Port: 8080}
	e.s.SetEndpointHealth(zoneA, "web", dual, "UNHEALTHY")
	if got := e.dualHealths()["10.64.1.9/fd20::4001:40:109"]; !strings.Contains(got, "bs-prefer-ipv6=UNHEALTHY/UNHEALTHY") || !strings.Contains(got, "bs-ipv6-only=/UNHEALTHY") {
		t.Errorf("forced: %s", got)
	}
	e.s.SetEndpointHealth(zoneA, "web", neg.Endpoint{Instance: "node-1", IP: "10.64.1.9", Port: 8080}, "DRAINING") // another endpoint
	if got := e.dualHealths()["10.64.1.9/fd20::4001:40:109"]; strings.Contains(got, "DRAINING") {
		t.Errorf("an override of the IPv4-only endpoint applied to the dual-stack one: %s", got)
	}
	resp, body := httpDo(t, http.MethodPost, e.base+"/admin/health",
		`{"zone":"us-central1-a","neg":"web","instance":"node-1","ipAddress":"","ipv6Address":"fd20::4001:40:108","port":8080,"state":"DRAINING"}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("admin health: %d %s", resp.StatusCode, body)
	}
	if got := e.dualHealths()["/fd20::4001:40:108"]; got != "bs-default=UNKNOWN/ bs-ipv4-only=UNKNOWN/ bs-ipv6-only=/DRAINING bs-prefer-ipv6=/DRAINING" {
		t.Errorf("forced over HTTP: %s", got)
	}
	d := e.s.State()
	var dumped []string
	for _, nd := range d.NEGs {
		if nd.NEG.Name == "web" {
			for _, ed := range nd.Endpoints {
				dumped = append(dumped, fmt.Sprintf("%s/%s=%s", ed.IPAddress, ed.IPv6Address, ed.ForcedHealth))
			}
		}
	}
	if w := "/fd20::4001:40:108=DRAINING 10.64.1.7/= 10.64.1.9/fd20::4001:40:109=UNHEALTHY"; strings.Join(dumped, " ") != w {
		t.Errorf("state dump: %s\nwant %s", strings.Join(dumped, " "), w)
	}
	be, err := e.s.BackendHealth("", "bs-ipv6-only")
	if err != nil || len(be) != 3 || be[2].Endpoint != dual || be[2].State != "" || be[2].IPv6State != "UNHEALTHY" {
		t.Errorf("BackendHealth = %+v, %v", be, err)
	}
}

// TestIPv6ProbeAndLoadBalancer probes both addresses of dual-stack endpoints through the emulated
// VPC and checks that each load balancer sends to the address its ipAddressSelectionPolicy
// picks. One server on 127.64.1.7 serves 10.64.1.7 and fd20::4001:40:107; endpoint A pairs the
// served IPv4 address with an unserved IPv6 one, B the other way round.
func TestIPv6ProbeAndLoadBalancer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.64.1.7:0")
	if err != nil {
		t.Fatalf("cannot listen on 127.64.1.7 (the emulator's loopback rule needs Linux-style loopback /8): %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "pod") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := int64(ln.Addr().(*net.TCPAddr).Port)
	ps := strconv.FormatInt(port, 10)

	e := dualEnv(t, fakegce.Config{HealthMode: fakegce.HealthModeProbe})
	e.attach(zoneA, "web", ep6("node-1", "10.64.1.7", "fd20::4001:40:108", port), ep6("node-1", "10.64.1.8", "fd20::4001:40:107", port))
	e.must(e.svc.HealthChecks.Insert(project, tcpHC()).Do())
	e.policyServices("", "IPV6_ONLY", "PREFER_IPV6")
	eventually(t, 30*time.Second, func() string {
		got := e.dualHealths()
		if got["10.64.1.7/fd20::4001:40:108"] != "bs-default=HEALTHY/ bs-ipv6-only=/UNHEALTHY bs-prefer-ipv6=HEALTHY/UNHEALTHY" ||
			got["10.64.1.8/fd20::4001:40:107"] != "bs-default=UNHEALTHY/ bs-ipv6-only=/HEALTHY bs-prefer-ipv6=UNHEALTHY/HEALTHY" {
			return fmt.Sprint(got)
		}
		return ""
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for bs, want := range map[string]string{
		"bs-default":     "map[10.64.1.7:" + ps + ":4]",
		"bs-ipv6-only":   "map[[fd20::4001:40:107]:" + ps + ":4]",
		"bs-prefer-ipv6": "map[10.64.1.7:" + ps + ":2 [fd20::4001:40:107]:" + ps + ":2]",
	} {
		addr, err := e.s.AddFrontend("", bs, "")
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			resp, err := client.Get("http://" + addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d (%s)", bs, resp.StatusCode, resp.Header.Get("X-Fakegce-Cause"))
			}
		}
		st, _ := e.s.Frontend(addr)
		if got := fmt.Sprint(st.Endpoints); got != want {
			t.Errorf("%s: requests per address %s, want %s", bs, got, want)
		}
	}
}
