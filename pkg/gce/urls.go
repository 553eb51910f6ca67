package gce

import (
	"strings"
	"unique"
)

// linkPrefix is the prefix of the links GCE returns (selfLink, zone, network, ...).
const linkPrefix = "https://www.googleapis.com/compute/v1/"

// ResourcePath returns the part of a resource URL starting at "projects/", so that full links
// (https://www.googleapis.com/compute/v1/projects/…, https://compute.googleapis.com/…,
// …/compute/beta/…) and partial ones ("projects/…", "/projects/…") compare equal. A value
// without "projects/" is returned unchanged.
func ResourcePath(url string) string {
	if strings.HasPrefix(url, "projects/") {
		return url
	}
	if i := strings.Index(url, "/projects/"); i >= 0 {
		return url[i+1:]
	}
	return url
}

// SameResource reports whether two resource URLs (full or partial) name the same resource.
func SameResource(a, b string) bool { return ResourcePath(a) == ResourcePath(b) }

// LastSegment returns the part of a URL or path after its last "/" (a name from a link such as
// a zone URL). A value without "/" is returned unchanged.
func LastSegment(url string) string {
	if i := strings.LastIndex(url, "/"); i >= 0 {
		return url[i+1:]
	}
	return url
}

// intern returns s as a canonical copy shared by every equal string interned (unique.Make),
// for the names and URLs repeated in GCE responses: every NEG's zone, network and subnetwork,
// every listed endpoint's instance. The copy holds only s, never the string s was sliced from.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

// isBareName reports whether v is a plain resource name rather than a (partial) URL.
func isBareName(v string) bool { return v != "" && !strings.Contains(v, "/") }

// NetworkURL expands a bare network name to the partial URL projects/P/global/networks/N. URLs
// (full or partial) and the empty string are returned unchanged.
func NetworkURL(project, network string) string {
	if !isBareName(network) {
		return network
	}
	return "projects/" + project + "/global/networks/" + network
}

// SubnetworkURL expands a bare subnetwork name to the partial URL
// projects/P/regions/R/subnetworks/S. URLs (full or partial) and the empty string are returned
// unchanged.
func SubnetworkURL(project, region, subnetwork string) string {
	if !isBareName(subnetwork) {
		return subnetwork
	}
	return "projects/" + project + "/regions/" + region + "/subnetworks/" + subnetwork
}

// NEGURL returns the full URL of a zonal NEG in the form GCE returns it, e.g. for
// BackendService.backends[].group, which must be fully qualified.
func NEGURL(project, zone, name string) string {
	return linkPrefix + "projects/" + project + "/zones/" + zone + "/networkEndpointGroups/" + name
}

// ZoneURL returns the full URL of a zone.
func ZoneURL(project, zone string) string {
	return linkPrefix + "projects/" + project + "/zones/" + zone
}

// opScope is where an operation lives: exactly one of zone / region set, or neither (global).
type opScope struct {
	zone, region string
}

// scopeOf derives an operation's scope from its zone / region fields, falling back to its
// selfLink (…/zones/Z/operations/… or …/regions/R/operations/…); otherwise global.
func scopeOf(zone, region, selfLink string) opScope {
	if zone != "" {
		return opScope{zone: LastSegment(zone)}
	}
	if region != "" {
		return opScope{region: LastSegment(region)}
	}
	if z := segmentAfter(selfLink, "zones"); z != "" {
		return opScope{zone: z}
	}
	if r := segmentAfter(selfLink, "regions"); r != "" {
		return opScope{region: r}
	}
	return opScope{}
}

// segmentAfter returns the path segment that follows the segment key in url, or "".
func segmentAfter(url, key string) string {
	parts := strings.Split(ResourcePath(url), "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == key {
			return parts[i+1]
		}
	}
	return ""
}

// String renders the scope as "zones/Z", "regions/R" or "global", for logs.
func (s opScope) String() string {
	switch {
	case s.zone != "":
		return "zones/" + s.zone
	case s.region != "":
		return "regions/" + s.region
	}
	return "global"
}
