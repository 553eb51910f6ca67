package app

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

func TestBackendOptions(t *testing.T) {
	o := NewOptions()
	if !o.EnableAutoneg || o.BackendServiceAllow != "" {
		t.Errorf("defaults: enable-autoneg %v, allow %q; want on, allowing nothing", o.EnableAutoneg, o.BackendServiceAllow)
	}
	o.BackendServiceAllow = "web-(.*"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--backend-service-allow") {
		t.Errorf("invalid allow-list accepted: %v", err)
	}

	ctx := context.Background()
	cloud, err := gce.New(ctx, gce.Config{Project: "p", WithoutAuth: true, Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	env := Environment{Project: "p", Region: "us-central1"}
	o = NewOptions()
	o.BackendServiceAllow = "web-.*, global/shared"
	bc := backendsConfig(ctx, o, env, cloud, nil, nil)
	if bc == nil || bc.Region != "us-central1" || bc.Cloud != gce.BackendServices(cloud) {
		t.Fatalf("config %+v", bc)
	}
	if !bc.Allow.Allows("", "web-a") || !bc.Allow.Allows("", "shared") || bc.Allow.Allows("europe-west4", "shared") {
		t.Errorf("allow-list %s", bc.Allow.String())
	}
	o.DryRun = true
	if bc := backendsConfig(ctx, o, env, cloud, nil, nil); bc.Cloud == gce.BackendServices(cloud) {
		t.Errorf("dry run does not wrap the backend services adapter")
	}
	o.EnableAutoneg = false
	if bc := backendsConfig(ctx, o, env, cloud, nil, nil); bc != nil {
		t.Errorf("--enable-autoneg=false: %+v", bc)
	}
}

// noEvents is a backends.Events that records nothing.
type noEvents struct{}

func (noEvents) Warn(cache.ObjectName, *corev1.Service, string, string, string) {}
func (noEvents) Clear(cache.ObjectName, string)                                 {}
func (noEvents) Normal(*corev1.Service, string, string)                         {}

// TestNewBackends: the controller's factory is nil when wiring is disabled, and builds the
// reconciler with the hooks the controller hands it (without them it is refused).
func TestNewBackends(t *testing.T) {
	retry := backoff.Policy{}.WithDefaults()
	if f := newBackends(nil, nil, time.Minute, retry, nil); f != nil {
		t.Errorf("wiring disabled: got a factory")
	}
	ctx := context.Background()
	cloud, err := gce.New(ctx, gce.Config{Project: "p", WithoutAuth: true, Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	bc := backendsConfig(ctx, o, Environment{Project: "p", Region: "us-central1"}, cloud, nil, nil)
	f := newBackends(bc, fake.NewClientset(), time.Minute, retry, nil)
	if f == nil {
		t.Fatal("wiring enabled: no factory")
	}
	if _, err := f(controller.BackendHooks{}); err == nil {
		t.Errorf("built without an event sink")
	}
	b, err := f(controller.BackendHooks{Events: noEvents{}, Requeue: func(cache.ObjectName) {}})
	if err != nil || b == nil {
		t.Errorf("factory: %v, %v", b, err)
	}
}
