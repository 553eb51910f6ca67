package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/fakegce"
)

// options are the command's flags.
type options struct {
	listen      string
	zones       []string
	quota       bool
	quotaLimits string
	auth        bool
	authCfg     fakegce.AuthConfig
	cfg         fakegce.Config
}

// addFlags registers every flag on fs.
func (o *options) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8085", "host:port to listen on (port 0 picks a free port; the real one is printed)")
	fs.StringVar(&o.cfg.Project, "project", fakegce.DefaultProject, "project id served (requests for other projects get 404)")
	fs.Int64Var(&o.cfg.NumericProjectID, "numeric-project-id", fakegce.DefaultNumericProjectID, "numeric project id (metadata server)")
	fs.StringVar(&o.cfg.Region, "region", fakegce.DefaultRegion, "the one region served")
	fs.StringSliceVar(&o.zones, "zones", nil, "comma-separated zones of the region (default REGION-a,REGION-b,REGION-c)")
	fs.StringVar(&o.cfg.ClusterName, "cluster-name", fakegce.DefaultClusterName, "metadata attribute instance/attributes/cluster-name")
	fs.DurationVar(&o.cfg.OperationLatency, "operation-latency", 50*time.Millisecond, "how long operations stay RUNNING before DONE (0 = DONE at once); effects show when DONE")
	fs.IntVar(&o.cfg.MaxEndpointsPerCall, "max-endpoints-per-call", fakegce.DefaultMaxEndpointsPerCall, "max endpoints in one attach/detach call (de-facto batch size, not a documented GCE limit)")
	fs.IntVar(&o.cfg.MaxEndpointsPerNEG, "max-endpoints-per-neg", fakegce.DefaultMaxEndpointsPerNEG, "max endpoints in one NEG (GCE: 10,000)")
	fs.BoolVar(&o.cfg.StrictEndpointOps, "strict-endpoint-ops", false, "fail attaching an attached endpoint / detaching an absent one with 400 invalid (default: no-ops; real GCE unverified)")
	fs.StringVar(&o.cfg.HealthMode, "health-mode", fakegce.HealthModeFixed, "endpoint health: 'fixed' (HEALTHY after --fixed-healthy-delay) or 'probe' (really probe 10.A.B.C at 127.A.B.C)")
	fs.DurationVar(&o.cfg.FixedHealthyDelay, "fixed-healthy-delay", 0, "fixed mode: delay after attachment to a health-checked backend service before an endpoint is HEALTHY")
	fs.StringVar(&o.cfg.DefaultStackType, "default-stack-type", fakegce.StackIPv4Only, "stack type of the default subnetwork: IPV4_ONLY (auto-mode network), IPV4_IPV6 (dual-stack) or IPV6_ONLY; with IPv6 the default network is custom mode with internal IPv6 range "+fakegce.DefaultNetworkIPv6Range+" and the subnetwork gets "+fakegce.DefaultSubnetIPv6Range)
	fs.BoolVar(&o.quota, "quota", false, fmt.Sprintf("enforce GCE's rate quotas: per group (%s) %d requests per minute per project in fixed minute windows; over it 403 rateLimitExceeded",
		strings.Join(fakegce.QuotaGroupNames(), ", "), fakegce.DefaultQuotaPerMinute))
	fs.StringVar(&o.quotaLimits, "quota-limits", "", "per-group limits per minute, e.g. default=3000,read_requests=6000 (implies --quota; groups not named keep the default)")
	fs.BoolVar(&o.auth, "auth", false, "serve Google's token endpoints for Workload Identity Federation: STS token exchange at /v1/token, IAM Credentials "+
		"at /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken (token_url and service_account_impersonation_url of an external_account credential file)")
	fs.BoolVar(&o.authCfg.Required, "require-auth", false, "reject Compute requests without a live token issued by the token endpoints or the metadata server (401); implies --auth")
	fs.StringVar(&o.authCfg.SubjectTokenFile, "auth-subject-token-file", "", "the STS accepts only the subject token in this file (read at each exchange), e.g. a projected service-account token; implies --auth")
	fs.StringVar(&o.authCfg.Audience, "auth-audience", "", "the STS accepts only this audience (//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/R); implies --auth")
	fs.StringSliceVar(&o.authCfg.ServiceAccounts, "auth-service-accounts", nil, "generateAccessToken impersonates only these service account emails (default any); implies --auth")
}

// parseFlags parses args into options (klog's flags included); errors and --help go to errOut.
func parseFlags(args []string, errOut io.Writer) (*options, error) {
	o := &options{}
	fs := pflag.NewFlagSet("fakegce", pflag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() {
		fmt.Fprintf(errOut, "Usage: fakegce [flags]\n\nIn-memory Compute Engine emulator (Compute API, metadata server, admin API) for tests and local clusters.\nPrints its base URL (http://HOST:PORT) as the first line on stdout.\n\nFlags:\n%s", fs.FlagUsages())
	}
	o.addFlags(fs)
	gofs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gofs)
	fs.AddGoFlagSet(gofs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.cfg.Zones = o.zones
	if o.quota || o.quotaLimits != "" {
		lim, err := fakegce.ParseQuotaLimits(o.quotaLimits)
		if err != nil {
			fmt.Fprintln(errOut, "fakegce: --quota-limits:", err)
			return nil, err
		}
		o.cfg.Quota = &fakegce.QuotaConfig{Limits: lim}
	}
	a := o.authCfg
	if o.auth || a.Required || a.SubjectTokenFile != "" || a.Audience != "" || len(a.ServiceAccounts) > 0 {
		o.cfg.Auth = &a
	}
	if err := o.cfg.Validate(); err != nil {
		fmt.Fprintln(errOut, "fakegce:", err)
		return nil, err
	}
	return o, nil
}

// run serves until ctx is done, then shuts down: emulator first (releases blocked waits), then
// the HTTP server.
func run(ctx context.Context, o *options, stdout io.Writer) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	s := fakegce.New(o.cfg)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	if _, err := fmt.Fprintln(stdout, base); err != nil {
		ln.Close()
		return err
	}
	cfg := s.Config()
	klog.InfoS("fakegce serving", "url", base, "project", cfg.Project, "region", cfg.Region, "zones", strings.Join(cfg.Zones, ","),
		"computeEndpoint", base+"/compute/v1/", "metadataHost", ln.Addr().String(), "healthMode", cfg.HealthMode,
		"quota", quotaString(s.Quota()), "auth", authString(cfg.Auth))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	klog.InfoS("fakegce shutting down")
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// quotaString renders the quota limits for the start-up log ("off" or "default=1500,...").
func quotaString(u fakegce.QuotaUsage) string {
	if !u.Enabled {
		return "off"
	}
	var parts []string
	for _, g := range u.Groups {
		parts = append(parts, fmt.Sprintf("%s=%d/min", g.Group, g.LimitPerMinute))
	}
	return strings.Join(parts, ",")
}

// authString renders the authentication mode for the start-up log.
func authString(a *fakegce.AuthConfig) string {
	switch {
	case a == nil:
		return "off"
	case a.Required:
		return "token endpoints, tokens required"
	}
	return "token endpoints"
}
