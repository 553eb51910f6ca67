package app

import (
	"context"
	"strings"
	"testing"

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
