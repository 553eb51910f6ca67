package app

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
)

func TestNEGBindingFlags(t *testing.T) {
	o := NewOptions()
	if o.NEGBinding.Enabled || o.NEGBinding.Allow != "" || o.NEGBinding.CleanupTimeout != 5*time.Minute {
		t.Fatalf("defaults: %+v (want off, allow all, 5m)", o.NEGBinding)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--enable-negbinding", "--negbinding-allow=team-a=team-a-.*,*=shared", "--negbinding-cleanup-timeout=90s"}); err != nil {
		t.Fatal(err)
	}
	want := NEGBindingOptions{Enabled: true, Allow: "team-a=team-a-.*,*=shared", CleanupTimeout: 90 * time.Second}
	if d := cmp.Diff(want, o.NEGBinding); d != "" {
		t.Errorf("parsed (-want +got):\n%s", d)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestValidateNEGBinding(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{name: "bad allow-list entry", mutate: func(o *Options) { o.NEGBinding.Allow = "team-a" }, wantErr: "--negbinding-allow"},
		{name: "bad regexp", mutate: func(o *Options) { o.NEGBinding.Allow = "team-a=(" }, wantErr: "--negbinding-allow"},
		{name: "zero timeout", mutate: func(o *Options) { o.NEGBinding.CleanupTimeout = 0 }, wantErr: "--negbinding-cleanup-timeout"},
		{name: "with non-GCP mode", mutate: func(o *Options) {
			o.NEGBinding.Enabled = true
			o.Hybrid.NEGType, o.Hybrid.DefaultNEGZone, o.Region = NEGTypeNonGCP, "europe-west1-b", "europe-west1"
		}, wantErr: "--enable-negbinding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			tc.mutate(o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}
