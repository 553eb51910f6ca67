package zones

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// AllZones is the "zones" entry of cloud.google.com/neg that stands for every zone of the region.
const AllZones = "*"

// ErrRegionZonesUnknown is returned (wrapped) by Preprovision when the field is well formed but
// the zones of the region, needed to resolve or check it, are not known yet.
var ErrRegionZonesUnknown = errors.New("the zones of the region are not known yet")

// Preprovision resolves the "zones" field of a cloud.google.com/neg annotation (NEG zone
// pre-provisioning) against region and its zones (regionZones, as GCE lists them; nil when not
// known yet). It returns the zones to pre-provision NEGs in, sorted and duplicate-free:
//
//	field                                  result
//	empty or absent                        none (nil, nil)
//	only "*" entries                        every zone of regionZones
//	zone names, each one of regionZones    those zones
//	"*" together with zone names           error (ambiguous)
//	a name not a zone of region            error naming every such entry and the region's zones
//	a well-formed name regionZones lacks   same error
//	well formed, regionZones nil           ErrRegionZonesUnknown (wrapped)
//
// An error concerns the whole field: the caller ignores it entirely (as GKE does). The
// message follows GKE's ("zone %q is not in the cluster's region zones: [...]"). Inputs are not
// modified.
func Preprovision(field []string, region string, regionZones []string) ([]string, error) {
	if len(field) == 0 {
		return nil, nil
	}
	var names []string
	wildcard := false
	for _, z := range field {
		if z == AllZones {
			wildcard = true
		} else {
			names = append(names, z)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if wildcard && len(names) > 0 {
		return nil, fmt.Errorf("%q (every zone of the region) cannot be combined with zone names (%s)",
			AllZones, quoteAll(names))
	}
	var bad []string
	for _, z := range names {
		if !IsZoneOf(z, region) || (regionZones != nil && !slices.Contains(regionZones, z)) {
			bad = append(bad, z)
		}
	}
	switch {
	case len(bad) > 0 && regionZones == nil:
		return nil, fmt.Errorf("%s %s %s not in the cluster's region %s", plural(bad, "zone", "zones"), quoteAll(bad),
			plural(bad, "is", "are"), regionOrUnset(region))
	case len(bad) > 0:
		return nil, fmt.Errorf("%s %s %s not in the cluster's region zones: [%s]", plural(bad, "zone", "zones"),
			quoteAll(bad), plural(bad, "is", "are"), strings.Join(regionZones, " "))
	case regionZones == nil:
		return nil, fmt.Errorf("resolving %s: %w", quoteAll(field), ErrRegionZonesUnknown)
	case wildcard:
		return slices.Clone(regionZones), nil
	}
	return names, nil
}

// quoteAll renders names as "a", "b".
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// plural picks one or many by the length of s.
func plural(s []string, one, many string) string {
	if len(s) == 1 {
		return one
	}
	return many
}

// regionOrUnset names the region, or says that none is configured.
func regionOrUnset(region string) string {
	if region == "" {
		return "(no region configured)"
	}
	return region
}
