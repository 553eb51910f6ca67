//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/compute/v1"

	"github.com/neg-controller/neg-controller/pkg/neg"
)

// TestDriftRepair changes GCE behind the controller's back — an endpoint detached, a stranger
// endpoint attached, a whole NEG deleted — and measures how long the controller takes to
// repair each. The controller runs with the default --resync-period and --neg-verify-period
// (10 min, 1 h), so no periodic full re-list can find the changes: all are found by the
// periodic NEG listing (--gc-period, 3 s in e2e) — endpoint changes from the NEG's size, the
// deleted NEG from its absence — and must be repaired within a few GC periods.
func TestDriftRepair(t *testing.T) {
	restartController(t, "--resync-period=10m", "--neg-verify-period=1h")
	t.Cleanup(func() { restartController(t) })
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 6, 8080)
	createService(t, ns, "web", "web", standalone80, 80)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 6, 90*time.Second)
	negs := gceNEGs(name)
	ctx := ctxFor(t)
	zoneA, zoneB, zoneC := initialZones[0], initialZones[1], initialZones[2]
	if len(negs[zoneA]) == 0 {
		t.Fatalf("no endpoints in %s to detach: %v", zoneA, negs)
	}
	// Barriers: the controller knows the endpoints of the NEGs (so the changes below are drift,
	// not something a first listing would see), and its periodic NEG listing runs (the first
	// pass comes 10 s after start; the listings at start, done by now, load the index), so the
	// repair times measure the steady state: a GC period plus a sync and an operation.
	for _, z := range []string{zoneA, zoneB, zoneC} {
		expectMetric(t, env.Controller(), fmt.Sprintf("neg_controller_attached_endpoints{neg=%q,zone=%q} %d", name, z, len(negs[z])))
	}
	mark := time.Now()
	waitFor(t, 30*time.Second, "first periodic NEG listing", func() (bool, string) {
		n := countCalls("compute.networkEndpointGroups.aggregatedList", mark)
		return n >= 1, "no NEG listing yet"
	})

	// 1. Detach one of our endpoints by hand.
	victim := negs[zoneA][0]
	detach := &compute.NetworkEndpointGroupsDetachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{toCompute(victim)}}
	if _, err := env.Compute.NetworkEndpointGroups.DetachNetworkEndpoints(env.Project, zoneA, name, detach).Context(ctx).Do(); err != nil {
		t.Fatalf("detaching by hand: %v", err)
	}
	// 2. Attach a stranger in another zone (in zone A a detach and an attach would leave the size
	// unchanged: only the full re-list every --neg-verify-period repairs such a swap): a valid
	// IP of a node's pod range that no pod has.
	var stranger neg.Endpoint
	for _, n := range env.Nodes {
		if n.Zone == zoneC {
			// .240 of the node's pod range: valid for GCE, and no pod has it (podsim hands out
			// addresses from .2 upwards).
			a := netip.MustParsePrefix(n.PodCIDR).Addr().As4()
			stranger = neg.Endpoint{Instance: n.Name, IP: fmt.Sprintf("%d.%d.%d.240", a[0], a[1], a[2]), Port: 8080}
			break
		}
	}
	attach := &compute.NetworkEndpointGroupsAttachEndpointsRequest{NetworkEndpoints: []*compute.NetworkEndpoint{toCompute(stranger)}}
	if _, err := env.Compute.NetworkEndpointGroups.AttachNetworkEndpoints(env.Project, zoneC, name, attach).Context(ctx).Do(); err != nil {
		t.Fatalf("attaching by hand: %v", err)
	}
	// 3. Delete zone B's NEG by hand.
	if _, err := env.Compute.NetworkEndpointGroups.Delete(env.Project, zoneB, name).Context(ctx).Do(); err != nil {
		t.Fatalf("deleting by hand: %v", err)
	}
	start := time.Now()
	waitFor(t, 20*time.Second, "hand-made changes visible in GCE", func() (bool, string) {
		_, ok := gceNEGs(name)[zoneB]
		return !ok, "NEG still in " + zoneB
	})

	repaired := map[string]time.Duration{}
	waitFor(t, 15*time.Second, "drift repaired", func() (bool, string) {
		cur := gceNEGs(name)
		check := map[string]bool{
			"detached endpoint re-attached": contains(cur[zoneA], victim),
			"stranger endpoint detached":    !contains(cur[zoneC], stranger),
			"deleted NEG re-created":        len(cur[zoneB]) > 0,
		}
		var pending []string
		for what, ok := range check {
			if ok {
				if _, seen := repaired[what]; !seen {
					repaired[what] = time.Since(start)
				}
			} else {
				pending = append(pending, what)
			}
		}
		return len(pending) == 0, fmt.Sprintf("pending: %v", pending)
	})
	for what, d := range repaired {
		t.Logf("repair time: %s after %s", what, d.Round(100*time.Millisecond))
	}
	expectSynced(t, ns, "web", "web", 80, 8080, 6, 60*time.Second)
	if n := driftDetected(t); n < 2 {
		t.Errorf("neg_controller_drift_detected_total{source=\"size\"} = %v, want ≥ 2 (zones A and C)", n)
	}
}

// driftDetected returns the controller's neg_controller_drift_detected_total{source="size"}.
func driftDetected(t *testing.T) float64 {
	t.Helper()
	_, body := scrape(t, env.Controller(), "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, `neg_controller_drift_detected_total{source="size"} `); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("bad metric line %q", l)
			}
			return n
		}
	}
	return 0
}

func toCompute(e neg.Endpoint) *compute.NetworkEndpoint {
	return &compute.NetworkEndpoint{Instance: e.Instance, IpAddress: e.IP, Port: e.Port}
}

func contains(eps []neg.Endpoint, e neg.Endpoint) bool {
	for _, x := range eps {
		if x == e {
			return true
		}
	}
	return false
}
