package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/fakegce"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

func TestBadAnnotations(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	cases := []struct {
		svc, value, reason, msg string
	}{
		{"bad-json", `{"exposed_ports":`, annotation.ReasonInvalid, "NEG annotation is invalid"},
		{"bad-port-key", `{"exposed_ports":{"http":{}}}`, annotation.ReasonInvalid, "NEG annotation is invalid"},
		{"unknown-port", `{"exposed_ports":{"81":{}}}`, annotation.ReasonUnknownPort, "port 81 specified"},
		{"name-with-ingress", `{"ingress":true,"exposed_ports":{"80":{"name":"ingress-custom"}}}`,
			annotation.ReasonInvalidCustomName, "custom neg name cannot be used with ingress enabled"},
		{"invalid-name", `{"exposed_ports":{"80":{"name":"Bad_Name"}}}`, annotation.ReasonInvalidCustomName, "Bad_Name"},
		{"long-name", `{"exposed_ports":{"80":{"name":"` + strings.Repeat("n", 64) + `"}}}`,
			annotation.ReasonInvalidCustomName, "is invalid"},
	}
	for _, c := range cases {
		e.createService(service("default", c.svc, c.value, 80))
	}
	e.createService(service("default", "good", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(3, "node-a1")
	for _, name := range []string{"good", "bad-json", "unknown-port", "invalid-name"} {
		e.setEndpoints("default", name, []int32{80}, pods)
	}
	c := e.start(nil, 0)

	e.eventually("good Service synced", func() error { return e.checkService("good", 80, negName("good", 80), pods, zoneA) })
	for _, tc := range cases {
		e.eventually(tc.svc+" warning", func() error { return e.checkEvent("default", tc.svc, tc.reason, tc.msg) })
	}
	// Resync everything a few times: no GCE call for the bad Services, no repeated warning.
	for i := 0; i < 3; i++ {
		for _, tc := range cases {
			c.queue.Add(keyOf("default", tc.svc))
		}
		e.waitQuiet()
	}
	for _, tc := range cases {
		if reqs := e.requestsMentioning(tc.svc); len(reqs) > 0 {
			t.Errorf("%s: GCE requests made: %v", tc.svc, reqs[0].Path)
		}
		evs := e.events("default", tc.svc, tc.reason)
		if len(evs) != 1 || evs[0].Count > 1 {
			t.Errorf("%s: want exactly one %s warning, got %d events (count %d)", tc.svc, tc.reason, len(evs), evs[0].Count)
		}
		if _, ok := e.status("default", tc.svc); ok {
			t.Errorf("%s: has a neg-status", tc.svc)
		}
	}
	for _, n := range []string{"ingress-custom", "Bad_Name", strings.Repeat("n", 64)} {
		if reqs := e.requestsMentioning(n); len(reqs) > 0 {
			t.Errorf("request for rejected name %s: %v", n, reqs[0].Path)
		}
	}
}

// TestBadAnnotationKeepsNEGs checks that breaking the annotation of a synced Service leaves its
// NEGs and endpoints as they were (GKE keeps the last good configuration).
func TestBadAnnotationKeepsNEGs(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	e.createService(service("default", "web", `{"exposed_ports":{"80":{}}}`, 80))
	pods := e.pods(4, "node-a1")
	e.setEndpoints("default", "web", []int32{80}, pods)
	e.start(nil, 0)
	name := negName("web", 80)
	e.eventually("converge", func() error { return e.checkService("web", 80, name, pods, zoneA) })
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":`)
	e.eventually("warning", func() error { return e.checkEvent("default", "web", annotation.ReasonInvalid, "invalid") })
	e.setEndpoints("default", "web", []int32{80}, pods[:1])
	e.settle()
	if err := e.checkService("web", 80, name, pods, zoneA); err != nil {
		t.Errorf("NEG changed while the annotation is broken: %v", err)
	}
	if _, ok := e.status("default", "web"); !ok {
		t.Errorf("neg-status removed while the annotation is broken")
	}
	// Fixing it resumes syncing.
	e.setAnnotation("default", "web", `{"exposed_ports":{"80":{}}}`)
	e.eventually("resumed", func() error { return e.checkService("web", 80, name, pods[:1], zoneA) })
}

func TestCustomNameConflict(t *testing.T) {
	e := newTestEnv(t, fakegce.Config{})
	e.addNode("node-a1", zoneA)
	older := service("default", "older", `{"exposed_ports":{"80":{"name":"shared-neg"}}}`, 80)
	older.CreationTimestamp = metav1.NewTime(time.Now().Add(-time.Hour))
	newer := service("default", "newer", `{"exposed_ports":{"80":{"name":"shared-neg"}}}`, 80)
	e.createService(newer)
	e.createService(older)
	podsOld := e.pods(3, "node-a1")
	podsNew := e.pods(5, "node-a1")[3:]
	e.setEndpoints("default", "older", []int32{80}, podsOld)
	e.setEndpoints("default", "newer", []int32{80}, podsNew)
	e.start(nil, 0)

	e.eventually("older wins", func() error { return e.checkService("older", 80, "shared-neg", podsOld, zoneA) })
	e.eventually("newer rejected", func() error {
		return e.checkEvent("default", "newer", ReasonNEGNameConflict, "Service default/older")
	})
	if _, ok := e.status("default", "newer"); ok {
		t.Errorf("loser got a neg-status")
	}
	e.waitQuiet()
	if err := e.checkService("older", 80, "shared-neg", podsOld, zoneA); err != nil {
		t.Errorf("loser changed the winner's NEG: %v", err)
	}

	// When the winner goes away, its NEG is deleted and the other Service gets the name.
	e.deleteService("default", "older")
	e.eventually("newer takes over", func() error {
		if err := e.checkService("newer", 80, "shared-neg", podsNew, zoneA); err != nil {
			return err
		}
		n, err := e.newCloud().GetNEG(e.ctx, zoneA, "shared-neg")
		if err != nil {
			return err
		}
		if !strings.Contains(n.Description, `"service-name":"newer"`) {
			return fmt.Errorf("description %s", n.Description)
		}
		return nil
	})
}

func TestForeignNEGIsNotTouched(t *testing.T) {
	for _, early := range []bool{true, false} {
		t.Run(fmt.Sprintf("existsBeforeStart=%v", early), func(t *testing.T) {
			e := newTestEnv(t, fakegce.Config{})
			e.addNode("node-a1", zoneA)
			cloud := e.newCloud()
			makeForeign := func() {
				if _, err := cloud.CreateNEG(e.ctx, zoneA, gce.NEGSpec{Name: "hand-made", Type: gce.TypeGCEVMIPPort}); err != nil {
					t.Fatalf("CreateNEG: %v", err)
				}
			}
			if early {
				makeForeign()
			}
			e.createService(service("default", "good", `{"exposed_ports":{"80":{}}}`, 80))
			e.createService(service("default", "web", `{"exposed_ports":{"80":{"name":"hand-made"}}}`, 80))
			pods := e.pods(3, "node-a1")
			e.setEndpoints("default", "web", []int32{80}, pods)
			e.setEndpoints("default", "good", []int32{80}, pods)
			if !early {
				makeForeign()
			}
			e.srv.ResetCounts()
			e.start(nil, 0)
			e.eventually("warning", func() error {
				return e.checkEvent("default", "web", ReasonNEGNotOwned, `NEG "hand-made" in zone "us-central1-a" already exists`)
			})
			e.eventually("other Service synced", func() error { return e.checkService("good", 80, negName("good", 80), pods, zoneA) })
			// The NEGNotOwned Service is re-checked every backoff cap (500 ms here).
			e.settleWithin(100 * time.Millisecond)
			if err := e.checkNEG(zoneA, "hand-made", nil); err != nil {
				t.Errorf("foreign NEG modified: %v", err)
			}
			for _, r := range e.requestsMentioning("hand-made") {
				if r.Method != mGet && r.Method != mInsert {
					t.Errorf("call on the foreign NEG: %s %s", r.Method, r.Path)
				}
			}
			// Removing the annotation never deletes it.
			e.setAnnotation("default", "web", "")
			e.settle()
			if err := e.checkNEG(zoneA, "hand-made", nil); err != nil {
				t.Errorf("foreign NEG deleted: %v", err)
			}
		})
	}
}
