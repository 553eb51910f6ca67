package fakegce

import (
	"regexp"
	"strings"
	"time"
)

// linkPrefix is how real Compute Engine spells the links it returns (selfLink, zone, network, ...),
// whatever endpoint the request came in on.
const linkPrefix = "https://www.googleapis.com/compute/v1/"

// nameRE is the RFC 1035 resource-name rule of Compute Engine (1–63 characters).
var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// validName reports whether name is a valid Compute Engine resource name.
func validName(name string) bool { return len(name) <= 63 && nameRE.MatchString(name) }

// timestamp renders t the way Compute Engine renders creationTimestamp, insertTime and friends.
func timestamp(t time.Time) string { return t.Format("2006-01-02T15:04:05.000-07:00") }

// rel returns the "projects/<project>/..." path of a resource of this project.
func (s *Server) rel(parts ...string) string {
	return "projects/" + s.cfg.Project + "/" + strings.Join(parts, "/")
}

// link returns the full https://www.googleapis.com/compute/v1/ URL of a resource of this project.
func (s *Server) link(parts ...string) string { return linkPrefix + s.rel(parts...) }

func (s *Server) zoneLink(zone string) string     { return s.link("zones", zone) }
func (s *Server) regionLink(region string) string { return s.link("regions", region) }

// scopeLink returns the link of the scope a regional ("" = global) resource lives in.
func scopeParts(region string) []string {
	if region == "" {
		return []string{"global"}
	}
	return []string{"regions", region}
}

// canonical turns a full URL ("https://.../compute/v1/projects/p/..."), a partial URL
// ("projects/p/...", "global/...", "regions/...", "zones/...") or a bare name into the path
// starting at "projects/". A bare name (no slash) is returned as "" so that the caller applies
// its own default collection. Comparisons of links always go through this function, so any
// host or API version prefix is accepted.
func (s *Server) canonical(ref string) string {
	ref = strings.TrimSpace(ref)
	if strings.HasPrefix(ref, "projects/") {
		return ref
	}
	if i := strings.Index(ref, "/projects/"); i >= 0 {
		return ref[i+1:]
	}
	for _, p := range []string{"global/", "regions/", "zones/"} {
		if strings.HasPrefix(ref, p) {
			return "projects/" + s.cfg.Project + "/" + ref
		}
	}
	return ""
}

// refParts resolves ref (full or partial URL, or a bare name) to its path segments after
// "projects/<project>/". A bare name is resolved inside defaultScope (e.g. "global/networks"
// or "zones/us-central1-a/instances"). ok is false when the reference names another project
// or does not parse.
func (s *Server) refParts(ref string, defaultScope string) (parts []string, ok bool) {
	c := s.canonical(ref)
	if c == "" {
		if ref == "" || strings.Contains(ref, "/") {
			return nil, false
		}
		c = s.rel(defaultScope, ref)
	}
	segs := strings.Split(c, "/")
	if len(segs) < 3 || segs[0] != "projects" || segs[1] != s.cfg.Project {
		return nil, false
	}
	return segs[2:], true
}

// parseNetworkRef resolves a network reference to the network's name.
func (s *Server) parseNetworkRef(ref string) (string, bool) {
	p, ok := s.refParts(ref, "global/networks")
	if !ok || len(p) != 3 || p[0] != "global" || p[1] != "networks" {
		return "", false
	}
	return p[2], true
}

// parseSubnetworkRef resolves a subnetwork reference (a bare name is taken in the configured
// region) to its region and name.
func (s *Server) parseSubnetworkRef(ref string) (region, name string, ok bool) {
	p, ok := s.refParts(ref, "regions/"+s.cfg.Region+"/subnetworks")
	if !ok || len(p) != 4 || p[0] != "regions" || p[2] != "subnetworks" {
		return "", "", false
	}
	return p[1], p[3], true
}

// parseInstanceRef resolves an instance reference (a bare name is taken in zone) to its zone
// and name.
func (s *Server) parseInstanceRef(ref, zone string) (z, name string, ok bool) {
	p, ok := s.refParts(ref, "zones/"+zone+"/instances")
	if !ok || len(p) != 4 || p[0] != "zones" || p[2] != "instances" {
		return "", "", false
	}
	return p[1], p[3], true
}

// parseHealthCheckRef resolves a health check reference (a bare name is taken in the scope of
// region, "" = global) to its scope and name.
func (s *Server) parseHealthCheckRef(ref, region string) (scopeKey, bool) {
	p, ok := s.refParts(ref, strings.Join(scopeParts(region), "/")+"/healthChecks")
	switch {
	case !ok:
		return scopeKey{}, false
	case len(p) == 3 && p[0] == "global" && p[1] == "healthChecks":
		return scopeKey{name: p[2]}, true
	case len(p) == 4 && p[0] == "regions" && p[2] == "healthChecks":
		return scopeKey{region: p[1], name: p[3]}, true
	}
	return scopeKey{}, false
}

// parseNEGURL resolves a full NEG URL, as Backend.group and getHealth's group carry it. Only
// fully-qualified URLs are accepted when full is set (GCE documents that Backend.group does not
// take partial URLs).
func (s *Server) parseNEGURL(ref string, full bool) (negKey, bool) {
	if full && !(strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://")) {
		return negKey{}, false
	}
	p, ok := s.refParts(ref, "")
	if !ok || len(p) != 4 || p[0] != "zones" || p[2] != "networkEndpointGroups" {
		return negKey{}, false
	}
	return negKey{zone: p[1], name: p[3]}, true
}
