package app

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestReadinessFlags(t *testing.T) {
	o := NewOptions()
	if o.Readiness.Timeout != 10*time.Minute || o.Readiness.WithoutHealthCheck != "wait" || o.Readiness.BindAddress != ":9443" {
		t.Errorf("defaults = %+v", o.Readiness)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--readiness-gate-timeout=2m", "--readiness-without-health-check=ready",
		"--webhook-bind-address=127.0.0.1:0", "--webhook-host=127.0.0.1,example.com", "--webhook-configuration-name=w",
		"--webhook-cert-secret=s", "--inject-readiness-gates-cluster-wide", "--controller-namespace=ns"}); err != nil {
		t.Fatal(err)
	}
	want := ReadinessOptions{Timeout: 2 * time.Minute, WithoutHealthCheck: "ready", BindAddress: "127.0.0.1:0",
		Hosts: "127.0.0.1,example.com", ServiceName: "neg-controller-webhook", ConfigurationName: "w", CertSecret: "s",
		ClusterWide: true, Namespace: "ns"}
	if o.Readiness != want {
		t.Errorf("parsed %+v, want %+v", o.Readiness, want)
	}
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
	if got := o.Readiness.hosts(); strings.Join(got, ",") != "127.0.0.1,example.com" {
		t.Errorf("hosts = %v", got)
	}
	o.Readiness.Hosts = ""
	if got := o.Readiness.hosts(); strings.Join(got, ",") != "neg-controller-webhook,neg-controller-webhook.ns,neg-controller-webhook.ns.svc,neg-controller-webhook.ns.svc.cluster.local" {
		t.Errorf("default hosts = %v", got)
	}
	bad := NewOptions()
	bad.Readiness.Timeout, bad.Readiness.WithoutHealthCheck, bad.Readiness.BindAddress = 0, "maybe", "9443"
	err := bad.Validate()
	for _, f := range []string{"--readiness-gate-timeout", "--readiness-without-health-check", "--webhook-bind-address"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate = %v, want a complaint about %s", err, f)
		}
	}
}
