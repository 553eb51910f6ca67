package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"k8s.io/klog/v2"
)

// metadataTimeout bounds every metadata-server lookup.
const metadataTimeout = 10 * time.Second

// Metadata is the part of the GCE metadata server client discovery uses
// (*metadata.Client implements it).
type Metadata interface {
	ProjectIDWithContext(ctx context.Context) (string, error)
	ZoneWithContext(ctx context.Context) (string, error)
	InstanceAttributeValueWithContext(ctx context.Context, attr string) (string, error)
	GetWithContext(ctx context.Context, suffix string) (string, error)
}

// Environment is what the controller learned about where it runs: flags first, the metadata
// server for the rest.
type Environment struct {
	Project     string
	Region      string
	Network     string // name or URL
	Subnetwork  string // name or URL, may be empty
	ClusterName string
}

// onGCE reports whether a metadata server is reachable (GCE_METADATA_HOST set, or the probe
// succeeds).
func onGCE(ctx context.Context) bool {
	if os.Getenv("GCE_METADATA_HOST") != "" {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	return metadata.OnGCEWithContext(ctx)
}

// Discover fills the values the options leave empty. The metadata server is asked only for
// what is missing, and only when md is not nil (the caller passes nil when it is not
// reachable). Project and region are required; the network defaults to "default".
func Discover(ctx context.Context, o *Options, md Metadata) (Environment, error) {
	env := Environment{Project: o.Project, Region: o.Region, Network: o.Network,
		Subnetwork: o.Subnetwork, ClusterName: o.ClusterName}
	logger := klog.FromContext(ctx)
	get := func(what string, f func(ctx context.Context) (string, error)) string {
		ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
		defer cancel()
		v, err := f(ctx)
		if err != nil {
			var nd metadata.NotDefinedError
			if !errors.As(err, &nd) {
				logger.Error(err, "Metadata server lookup failed", "what", what)
			}
			return ""
		}
		logger.Info("Discovered from the metadata server", what, strings.TrimSpace(v))
		return strings.TrimSpace(v)
	}
	if md != nil {
		if env.Project == "" {
			env.Project = get("project", md.ProjectIDWithContext)
		}
		if env.Region == "" {
			if zone := get("zone", md.ZoneWithContext); zone != "" {
				env.Region = regionOfZone(zone)
			}
		}
		if env.ClusterName == "" {
			env.ClusterName = get("clusterName", func(ctx context.Context) (string, error) {
				return md.InstanceAttributeValueWithContext(ctx, "cluster-name")
			})
		}
		if env.Network == "" {
			// Served as projects/NUMBER/networks/NAME.
			if n := get("network", func(ctx context.Context) (string, error) {
				return md.GetWithContext(ctx, "instance/network-interfaces/0/network")
			}); n != "" {
				env.Network = n[strings.LastIndex(n, "/")+1:]
			}
		}
	}
	if env.Network == "" {
		env.Network = "default"
	}
	var errs []error
	if env.Project == "" {
		errs = append(errs, errors.New("--project is required when the GCE metadata server is not available"))
	}
	if env.Region == "" {
		errs = append(errs, errors.New("--region is required when the GCE metadata server is not available"))
	}
	if len(errs) > 0 {
		return env, fmt.Errorf("discovering the environment: %w", errors.Join(errs...))
	}
	return env, nil
}

// regionOfZone returns the region of a zone name: "us-central1-b" → "us-central1".
func regionOfZone(zone string) string {
	if i := strings.LastIndex(zone, "-"); i > 0 {
		return zone[:i]
	}
	return zone
}
