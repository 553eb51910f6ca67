package app

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/neg-controller/neg-controller/pkg/controller"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// NEG types of --neg-type.
const (
	// NEGTypeGCE: cloud.google.com/neg gives GCE_VM_IP_PORT NEGs (GKE's normal mode).
	NEGTypeGCE = "gce"
	// NEGTypeNonGCP: cloud.google.com/neg gives NON_GCP_PRIVATE_IP_PORT NEGs (GKE's non-GCP
	// mode, kubernetes/ingress-gce --enable-non-gcp-mode).
	NEGTypeNonGCP = "non-gcp"
)

// HybridOptions configure hybrid connectivity (NON_GCP_PRIVATE_IP_PORT) NEGs: the NEG type of
// cloud.google.com/neg and how nodes outside Google Cloud are placed in GCE zones. Hybrid NEGs
// come from cloud.google.com/neg with --neg-type=non-gcp and from
// solutions.cloud.google.com/hybrid-neg in either mode.
type HybridOptions struct {
	// NEGType is --neg-type: NEGTypeGCE (default) or NEGTypeNonGCP.
	NEGType string
	// EnableNonGCPMode is --enable-non-gcp-mode, GKE's spelling of --neg-type=non-gcp.
	EnableNonGCPMode bool
	// ZoneMapping is --zone-mapping: <kubernetes zone>=<gce zone>,...
	ZoneMapping string
	// DefaultNEGZone is --default-neg-zone.
	DefaultNEGZone string
	// NEGZones is --neg-zones: zones that always get a hybrid NEG.
	NEGZones string
	// AdoptHybridControllerNEGs is --adopt-hybrid-neg-controller-negs.
	AdoptHybridControllerNEGs bool
}

// addHybridFlags binds the hybrid NEG options.
func (o *Options) addHybridFlags(fs *pflag.FlagSet) {
	h := &o.Hybrid
	fs.StringVar(&h.NEGType, "neg-type", h.NEGType,
		"Type of the NEGs cloud.google.com/neg asks for: \"gce\" (GCE_VM_IP_PORT: pods on GCE instances, as on GKE) or "+
			"\"non-gcp\" (NON_GCP_PRIVATE_IP_PORT hybrid connectivity NEGs: pod IP:port reached over Cloud VPN or "+
			"Interconnect from clusters outside Google Cloud, no instances; GKE's non-GCP mode). The annotation "+
			"solutions.cloud.google.com/hybrid-neg gives hybrid NEGs in either mode.")
	fs.BoolVar(&h.EnableNonGCPMode, "enable-non-gcp-mode", h.EnableNonGCPMode,
		"GKE's spelling of --neg-type=non-gcp (kubernetes/ingress-gce); either one turns the mode on.")
	fs.StringVar(&h.ZoneMapping, "zone-mapping", h.ZoneMapping,
		"For hybrid NEGs: comma-separated <kubernetes zone>=<gce zone> pairs mapping a node's topology.kubernetes.io/zone "+
			"label to the GCE zone of its NEG, e.g. eu-west-1a=europe-west1-b,eu-west-1b=europe-west1-c. Several "+
			"Kubernetes zones may share a GCE zone. Every GCE zone must be in --region. A label that already is a zone "+
			"of --region needs no entry.")
	fs.StringVar(&h.DefaultNEGZone, "default-neg-zone", h.DefaultNEGZone,
		"For hybrid NEGs: the GCE zone (in --region) of nodes without zone label or with one --zone-mapping does not "+
			"map. Empty: such nodes get no NEG endpoints (reported as skipped).")
	fs.StringVar(&h.NEGZones, "neg-zones", h.NEGZones,
		"For hybrid NEGs: comma-separated GCE zones (in --region) that always get a NEG, with or without nodes mapped "+
			"to them, besides the zones nodes map to.")
	fs.BoolVar(&h.AdoptHybridControllerNEGs, "adopt-hybrid-neg-controller-negs", h.AdoptHybridControllerNEGs,
		"Take over the Services of k8s-hybrid-neg-controller (stop it first): a NEG it created for a Service "+
			"(NEG annotations created-by and k8s-service, description \"Kubernetes Service\") whose name the Service's "+
			"solutions.cloud.google.com/hybrid-neg-status lists becomes the Service's NEG, with its name and endpoints; "+
			"the names it generated are kept; its finalizer solutions.cloud.google.com/hybrid-neg is removed. Without it, "+
			"such Services are left alone with a Warning event.")
}

// NonGCPMode reports whether cloud.google.com/neg gives hybrid NEGs (--neg-type=non-gcp or
// --enable-non-gcp-mode).
func (o *Options) NonGCPMode() bool {
	return o.Hybrid.NEGType == NEGTypeNonGCP || o.Hybrid.EnableNonGCPMode
}

// ZoneMapping returns the node placement for hybrid NEGs in region (--region, or the
// discovered one). Options.Validate has checked the flags against --region when it was given.
func (o *Options) ZoneMapping(region string) (zones.Mapping, error) {
	m, err := o.Hybrid.mapping(region)
	if err != nil {
		return zones.Mapping{}, err
	}
	return m, m.Validate()
}

// controllerConfig is the controller's hybrid NEG configuration for region.
func (o *Options) controllerConfig(region string) (controller.HybridConfig, error) {
	m, err := o.ZoneMapping(region)
	if err != nil {
		return controller.HybridConfig{}, fmt.Errorf("hybrid NEG zones: %w", err)
	}
	return controller.HybridConfig{NonGCPMode: o.NonGCPMode(), Zones: m,
		AdoptHybridControllerNEGs: o.Hybrid.AdoptHybridControllerNEGs}, nil
}

// mapping parses the zone flags into a Mapping for region, without the region check.
func (h HybridOptions) mapping(region string) (zones.Mapping, error) {
	zm, err := zones.ParseZoneMapping(h.ZoneMapping)
	if err != nil {
		return zones.Mapping{}, fmt.Errorf("--zone-mapping: %w", err)
	}
	return zones.Mapping{Region: region, Zones: zm, Default: h.DefaultNEGZone, NEGZones: zones.ParseZoneList(h.NEGZones)}, nil
}

// validateHybrid checks the hybrid NEG options: the NEG type; the zone flags' syntax; every GCE
// zone they name in --region (zone flags need --region: nodes outside Google Cloud have no
// metadata server to learn it from); and, in non-GCP mode, a way to place nodes in zones.
func (o *Options) validateHybrid() []error {
	h := o.Hybrid
	var errs []error
	if h.NEGType != NEGTypeGCE && h.NEGType != NEGTypeNonGCP {
		errs = append(errs, fmt.Errorf("--neg-type must be %q or %q, got %q", NEGTypeGCE, NEGTypeNonGCP, h.NEGType))
	}
	m, err := h.mapping(o.Region)
	if err != nil {
		return append(errs, err)
	}
	if !m.Empty() && o.Region == "" {
		errs = append(errs, errors.New("--zone-mapping, --default-neg-zone and --neg-zones need --region (their zones must be in it)"))
	} else if err := m.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("hybrid NEG zones: %w", err))
	}
	if o.NonGCPMode() && len(m.Zones) == 0 && m.Default == "" {
		errs = append(errs, errors.New("--neg-type=non-gcp needs --zone-mapping or --default-neg-zone: nodes outside "+
			"Google Cloud have no GCE zone"))
	}
	return errs
}
