package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/backoff"
	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/neg"
	"github.com/neg-controller/neg-controller/pkg/negindex"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// NEG zone pre-provisioning: the "zones" field of cloud.google.com/neg (and of
// solutions.cloud.google.com/hybrid-neg, which takes the same JSON) asks for NEGs, empty until
// pods run there, in zones without nodes too — ["*"] in every zone of the region, or in the
// zones listed — so that a load balancer can be given every zone's NEG before any workload
// lands there (kubernetes/ingress-gce #3152, GKE's --enable-neg-preprovisioning).
//
//   - The zones of the region come from GCE (zones.list, every status), listed before the first
//     sync and again every GCPeriod; never per sync. Until a first listing succeeds, a Service's
//     field is left pending: no zone is added, nothing is deleted for it, no Warning.
//   - The field is all or nothing (zones.Preprovision): one bad entry — not a zone of the
//     region, malformed, "*" mixed with names — and the whole field is ignored with a Warning
//     IgnoreZonePreprovisioningAnnotation (GKE's reason), while the NEGs of the node zones keep
//     syncing. With pre-provisioning off a field present is ignored with the same Warning.
//   - The NEG zones of a sync are the zones of its candidate nodes (or of the hybrid zone
//     mapping, with --neg-zones) plus the field's zones: a NEG is ensured in each, listed in
//     neg-status and the ServiceNetworkEndpointGroup (ACTIVE) once it exists, and holds the
//     endpoints of the pods in its zone (none, without nodes there). For hybrid NEGs the
//     field's zones are GCE zones of --region, not node labels: --zone-mapping does not apply.
//   - A NEG created for a zone only the field asked for carries PreprovisionedAnnotation. When
//     the field no longer names its zone (or pre-provisioning is turned off) and no node of the
//     cluster is in that zone, such a NEG is removed like the NEG of a removed port: deleted,
//     unless a backend service (ours or anyone's) still uses it, in which case it is kept,
//     emptied, with NEGInUse. Only a final outcome of the field does this (off, absent, or
//     valid); an invalid or pending field deletes nothing. Every other NEG of a zone without
//     candidate nodes is kept, emptied (INACTIVE), as before and as GKE does.
//   - The periodic garbage collection enqueues the Services that have such a NEG, so it goes
//     even when no event comes.

// PreprovisionConfig configures NEG zone pre-provisioning.
type PreprovisionConfig struct {
	// Enabled honours the "zones" field (--enable-neg-preprovisioning). Off, a field present is
	// ignored with a Warning, and NEGs pre-provisioned earlier go when no node needs them.
	Enabled bool
	// Region is the cluster's region (--region): the field names zones of it.
	Region string
	// RegionZones lists every zone of Region (gce.Compute.RegionZones). Required when Enabled.
	RegionZones func(ctx context.Context) ([]string, error)
}

// ReasonIgnoreZonePreprovisioning (Warning): the Service's "zones" field is ignored, because an
// entry is invalid or pre-provisioning is off. GKE's reason.
const ReasonIgnoreZonePreprovisioning = "IgnoreZonePreprovisioningAnnotation"

// PreprovisionedAnnotation is set to "true" in the annotations field of a NEG created for a zone
// that only the Service's "zones" field asked for (no candidate node there at the time): the
// mark that lets the NEG be deleted when the field drops the zone. Whether GCE restricts
// annotation keys is not documented; this key uses only lowercase letters and '-'.
const PreprovisionedAnnotation = "neg-controller-preprovisioned"

const slotZones = "zones"

// regionZoneList caches the zones of the region for pre-provisioning.
type regionZoneList struct {
	mu    sync.Mutex
	zones []string // sorted; nil until the first successful listing
}

func (l *regionZoneList) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.zones
}

// set stores zones (sorted) and reports whether they changed.
func (l *regionZoneList) set(zs []string) bool {
	zs = slices.Sorted(slices.Values(zs))
	if zs == nil {
		zs = []string{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.zones != nil && slices.Equal(l.zones, zs) {
		return false
	}
	l.zones = zs
	return true
}

// refreshRegionZones lists the zones of the region; when they changed, every NEG Service is
// synced again (their "zones" fields may resolve differently).
func (c *Controller) refreshRegionZones(ctx context.Context) error {
	zs, err := c.cfg.Preprovisioning.RegionZones(gce.WithPriority(ctx, gce.PriorityBackground))
	if err != nil {
		return fmt.Errorf("listing the zones of region %s: %w", c.cfg.Preprovisioning.Region, err)
	}
	if c.regionZones.set(zs) {
		klog.FromContext(ctx).Info("Zones of the region for NEG pre-provisioning", "region", c.cfg.Preprovisioning.Region, "zones", zs)
		c.enqueueNEGServices()
	}
	return nil
}

// runRegionZones refreshes the zones of the region every GCPeriod after first (the outcome of
// the listing Run made before the first sync), sooner after a failure, until ctx is done.
func (c *Controller) runRegionZones(ctx context.Context, first error) {
	logger := klog.FromContext(ctx)
	failures := 0
	err := first
	for {
		delay := c.cfg.GCPeriod
		if err != nil {
			failures++
			delay = min(delay, backoff.Jitter(c.cfg.Backoff.ErrorDelay(failures, err)))
			logger.Error(err, "NEG zone pre-provisioning: listing zones failed; retrying", "delay", delay)
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(delay):
		}
		err = c.refreshRegionZones(ctx)
	}
}

// zonePlan is what the "zones" field of a Service asks for.
type zonePlan struct {
	// zones are the zones to pre-provision NEGs in, sorted.
	zones []string
	// final: the field's outcome is final — pre-provisioning off, the field absent or valid —
	// so NEGs pre-provisioned earlier in zones it does not name may go. Not final while the
	// field is ignored as invalid or the region's zones are not known yet.
	final bool
	// problem says why the field is ignored ("" when it is not).
	problem string
}

// zonePlan resolves the "zones" field of svc's annotation src (whose JSON wanted.Resolver.NEGs accepted).
func (c *Controller) zonePlan(svc *corev1.Service, src annotation.Source) zonePlan {
	if svc == nil || src.ConfigKey == "" {
		return zonePlan{final: true}
	}
	cfg, _, err := annotation.FromSource(svc, src)
	if err != nil || len(cfg.Zones) == 0 {
		return zonePlan{final: err == nil}
	}
	pc := c.cfg.Preprovisioning
	if !pc.Enabled {
		return zonePlan{final: true, problem: fmt.Sprintf("Ignore zone pre-provisioning annotation: the \"zones\" "+
			"field of %s is ignored because NEG zone pre-provisioning is off in this controller "+
			"(--enable-neg-preprovisioning=false); NEGs exist only in the zones with nodes.", src.ConfigKey)}
	}
	zs, err := zones.Preprovision(cfg.Zones, pc.Region, c.regionZones.get())
	switch {
	case errors.Is(err, zones.ErrRegionZonesUnknown):
		return zonePlan{}
	case err != nil:
		return zonePlan{problem: fmt.Sprintf("Ignore zone pre-provisioning annotation because of incorrect value: %v. "+
			"The whole \"zones\" field of %s is ignored until it is fixed: NEGs are ensured in the zones with nodes "+
			"only, and NEGs pre-provisioned earlier are kept.", err, src.ConfigKey)}
	}
	return zonePlan{zones: zs, final: true}
}

// preprovision adds the zones the Service's "zones" field asks for to the NEG zones of s (after
// loadNodes), and records a problem with the field as a (deduplicated) Warning.
func (c *Controller) preprovision(ctx context.Context, s *serviceSync) {
	p := c.zonePlan(s.svc, s.src)
	if p.problem != "" {
		klog.FromContext(ctx).V(2).Info("Ignoring the zones field of the NEG annotation", "problem", p.problem)
		c.warn(s.key, s.target, slotZones, ReasonIgnoreZonePreprovisioning, p.problem)
	} else {
		c.warnings.Clear(s.key, slotZones)
	}
	addPreprovisioned(s, p)
}

// addPreprovisioned adds p's zones to the NEG zones of s, noting those without candidate node
// (preOnly) and whether the field's outcome is final.
func addPreprovisioned(s *serviceSync, p zonePlan) {
	s.zonesFinal = p.final
	s.preOnly = nil
	for _, z := range p.zones {
		if !slices.Contains(s.negZones, z) {
			s.preOnly = append(s.preOnly, z)
		}
	}
	if len(s.preOnly) > 0 {
		s.negZones = slices.Sorted(slices.Values(append(slices.Clone(s.negZones), s.preOnly...)))
	}
}

// preprovisionSpec marks the spec of a NEG created in a zone only the "zones" field asked for.
func preprovisionSpec(s *serviceSync, zone string, spec *gce.NEGSpec) {
	if slices.Contains(s.preOnly, zone) {
		spec.Annotations = map[string]string{PreprovisionedAnnotation: "true"}
	}
}

// preprovisioned reports whether n was created for a zone only the "zones" field asked for.
func preprovisioned(n gce.NEG) bool { return n.Annotations[PreprovisionedAnnotation] == "true" }

// retired reports whether e, a NEG of ours for a wanted port of s in zone ref.Zone, which is not
// one of the NEG zones of s, goes: it was pre-provisioned, the field's outcome is final, it is of
// the Service's NEG type, and no node of the cluster (candidate or not) is in its zone. Such a
// NEG is removed like the NEG of a removed port (removeNEG: kept while a backend service uses
// it). Any other NEG of a zone without candidate nodes is kept, emptied.
func (c *Controller) retired(s *serviceSync, ref neg.Ref, e negindex.Entry) bool {
	if !s.zonesFinal || !preprovisioned(e.NEG) || negindex.TypeOf(e.NEG) != s.negType() {
		return false
	}
	for _, n := range s.nodes {
		if n.Zone == ref.Zone {
			return false
		}
	}
	return true
}

// retiredOutsideSync is retired for the garbage collection, which has no sync state: it places
// nodes (list) and resolves the field as a sync of svc would.
func (c *Controller) retiredOutsideSync(svc *corev1.Service, src annotation.Source, ref neg.Ref, e negindex.Entry,
	list []*corev1.Node) bool {
	if !preprovisioned(e.NEG) {
		return false
	}
	s := &serviceSync{svc: svc, src: src, hybrid: src.Hybrid}
	c.placeNodes(s, list)
	addPreprovisioned(s, c.zonePlan(svc, src))
	return !slices.Contains(s.negZones, ref.Zone) && c.retired(s, ref, e)
}
