//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neg-controller/neg-controller/pkg/controller"
)

// TestZonePreprovisioning: with --enable-neg-preprovisioning, "zones": ["*"] gives the Service an
// empty NEG in us-central1-f too, a zone of the region without nodes, marked as pre-provisioned
// and listed in neg-status; a field naming a zone of another region is ignored as a whole with a
// Warning, while that Service's node zones are synced as usual.
func TestZonePreprovisioning(t *testing.T) {
	restartController(t, "--enable-neg-preprovisioning")
	t.Cleanup(func() { restartController(t) })
	ns := newNamespace(t)
	createDeployment(t, ns, "web", 3, 8080)
	createService(t, ns, "web", "web", `{"exposed_ports":{"80":{}},"zones":["*"]}`, 80)
	createService(t, ns, "bad", "web", `{"exposed_ports":{"80":{}},"zones":["us-central1-a","europe-west1-b"]}`, 80)

	everyZone := append(slices.Clone(initialZones), spareZone)
	name := expectSynced(t, ns, "web", "web", 80, 8080, 3, 90*time.Second)
	waitFor(t, 60*time.Second, "NEG pre-provisioned in "+spareZone, func() (bool, string) {
		st, _ := negStatus(t, ns, "web")
		eps, ok := gceNEGs(name)[spareZone]
		if !ok || len(eps) != 0 || !slices.Equal(st.Zones, everyZone) {
			return false, fmt.Sprintf("NEG in %s: %v (endpoints %v); neg-status zones %v, want %v", spareZone, ok, eps, st.Zones, everyZone)
		}
		return true, ""
	})
	n, err := env.Compute.NetworkEndpointGroups.Get(env.Project, spareZone, name).Context(ctxFor(t)).Do()
	if err != nil {
		t.Fatal(err)
	}
	if n.Annotations[controller.PreprovisionedAnnotation] != "true" {
		t.Errorf("NEG in %s: annotations %v, want %s=true", spareZone, n.Annotations, controller.PreprovisionedAnnotation)
	}
	// The whole service stays in step: every zone's NEG, the pods in the node zones.
	expectSynced(t, ns, "web", "web", 80, 8080, 3, 30*time.Second)

	ev := expectEvent(t, ns, "bad", controller.ReasonIgnoreZonePreprovisioning, 30*time.Second)
	if ev.Type != "Warning" || !strings.Contains(ev.Message, `zone "europe-west1-b" is not in the cluster's region zones`) {
		t.Errorf("event %s %q, want a Warning naming europe-west1-b", ev.Type, ev.Message)
	}
	expectSynced(t, ns, "bad", "web", 80, 8080, 3, 90*time.Second)
	if st, _ := negStatus(t, ns, "bad"); !slices.Equal(st.Zones, initialZones) {
		t.Errorf("bad: neg-status zones %v, want the node zones %v", st.Zones, initialZones)
	}
}
