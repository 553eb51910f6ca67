package fakegce

import (
	"net/http"
	"slices"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// healthCheck is a stored global (key.region "") or regional health check; obj is never
// mutated once stored.
type healthCheck struct {
	obj *compute.HealthCheck
}

func (s *Server) healthCheckRoutes() {
	for _, sc := range []struct{ path, id string }{
		{"global/healthChecks", "compute.healthChecks."},
		{"regions/{region}/healthChecks", "compute.regionHealthChecks."},
	} {
		s.handle(http.MethodPost, sc.path, sc.id+"insert", s.insertHC)
		s.handle(http.MethodGet, sc.path, sc.id+"list", s.listHC)
		s.handle(http.MethodGet, sc.path+"/{hc}", sc.id+"get", s.getHC)
		s.handle(http.MethodPut, sc.path+"/{hc}", sc.id+"update", s.updateHC)
		s.handle(http.MethodPatch, sc.path+"/{hc}", sc.id+"patch", s.patchHC)
		s.handle(http.MethodDelete, sc.path+"/{hc}", sc.id+"delete", s.deleteHC)
	}
}

func (s *Server) hcRel(k scopeKey) string {
	return s.rel(append(scopeParts(k.region), "healthChecks", k.name)...)
}

// hcTypes maps a health check type to its default port.
var hcTypes = map[string]int64{"HTTP": 80, "HTTPS": 443, "HTTP2": 443, "TCP": 80, "SSL": 443, "GRPC": 0, "GRPC_WITH_TLS": 0}

// validateHC checks a health check body and returns the object to store with GCE's defaults:
// checkIntervalSec 5, timeoutSec 5 (≤ interval), thresholds 2, requestPath "/", and the
// type's port when no port specification is given. Called with s.mu held.
func (s *Server) validateHC(k scopeKey, in *compute.HealthCheck) (*compute.HealthCheck, *apiError) {
	switch {
	case !validName(in.Name):
		return nil, errInvalidField("resource.name", in.Name, "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'")
	case in.Name != k.name:
		return nil, errInvalidField("resource.name", in.Name, "The name must match the health check in the request path.")
	}
	if _, ok := hcTypes[in.Type]; !ok {
		return nil, errInvalidField("resource.type", in.Type, "Must be one of HTTP, HTTPS, HTTP2, TCP, SSL, GRPC, GRPC_WITH_TLS.")
	}
	obj := *in
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&obj.CheckIntervalSec, 5)
	def(&obj.TimeoutSec, 5)
	def(&obj.HealthyThreshold, 2)
	def(&obj.UnhealthyThreshold, 2)
	if obj.TimeoutSec > obj.CheckIntervalSec {
		return nil, errInvalidField("resource.timeoutSec", obj.TimeoutSec, "timeoutSec must be less than or equal to checkIntervalSec.")
	}
	spec, port := hcPort(&obj)
	switch {
	case spec == "USE_SERVING_PORT" && *port != 0:
		return nil, errInvalidField("resource.port", *port, "Port must not be set with port specification USE_SERVING_PORT.")
	case spec != "" && !slices.Contains([]string{"USE_FIXED_PORT", "USE_NAMED_PORT", "USE_SERVING_PORT"}, spec):
		return nil, errInvalidField("resource.portSpecification", spec, "Unknown port specification.")
	case spec == "" && *port == 0:
		*port = hcTypes[obj.Type]
	case *port < 0 || *port > 65535:
		return nil, errInvalidField("resource.port", *port, "Must be between 1 and 65535.")
	}
	if obj.HttpHealthCheck != nil && obj.HttpHealthCheck.RequestPath == "" {
		obj.HttpHealthCheck.RequestPath = "/"
	}
	obj.Kind, obj.SelfLink = "compute#healthCheck", linkPrefix+s.hcRel(k)
	obj.Region = ""
	if k.region != "" {
		obj.Region = s.regionLink(k.region)
	}
	return &obj, nil
}

// hcPort returns the port specification of the type's sub-object (created if absent, copied
// otherwise) and a pointer to its port.
func hcPort(hc *compute.HealthCheck) (string, *int64) {
	switch hc.Type {
	case "HTTP":
		h := compute.HTTPHealthCheck{}
		if hc.HttpHealthCheck != nil {
			h = *hc.HttpHealthCheck
		}
		hc.HttpHealthCheck = &h
		return h.PortSpecification, &hc.HttpHealthCheck.Port
	case "HTTPS":
		h := compute.HTTPSHealthCheck{}
		if hc.HttpsHealthCheck != nil {
			h = *hc.HttpsHealthCheck
		}
		if h.RequestPath == "" {
			h.RequestPath = "/"
		}
		hc.HttpsHealthCheck = &h
		return h.PortSpecification, &hc.HttpsHealthCheck.Port
	case "HTTP2":
		h := compute.HTTP2HealthCheck{}
		if hc.Http2HealthCheck != nil {
			h = *hc.Http2HealthCheck
		}
		if h.RequestPath == "" {
			h.RequestPath = "/"
		}
		hc.Http2HealthCheck = &h
		return h.PortSpecification, &hc.Http2HealthCheck.Port
	case "SSL":
		h := compute.SSLHealthCheck{}
		if hc.SslHealthCheck != nil {
			h = *hc.SslHealthCheck
		}
		hc.SslHealthCheck = &h
		return h.PortSpecification, &hc.SslHealthCheck.Port
	case "GRPC":
		h := compute.GRPCHealthCheck{}
		if hc.GrpcHealthCheck != nil {
			h = *hc.GrpcHealthCheck
		}
		hc.GrpcHealthCheck = &h
		return h.PortSpecification, &hc.GrpcHealthCheck.Port
	case "GRPC_WITH_TLS":
		h := compute.GRPCTLSHealthCheck{}
		if hc.GrpcTlsHealthCheck != nil {
			h = *hc.GrpcTlsHealthCheck
		}
		hc.GrpcTlsHealthCheck = &h
		return h.PortSpecification, &hc.GrpcTlsHealthCheck.Port
	}
	h := compute.TCPHealthCheck{}
	if hc.TcpHealthCheck != nil {
		h = *hc.TcpHealthCheck
	}
	hc.TcpHealthCheck = &h
	return h.PortSpecification, &hc.TcpHealthCheck.Port
}

func (s *Server) getHC(c *call) (any, *apiError) {
	k := pathScoped(c.r, "hc")
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.st.hcs[k]
	if h == nil {
		return nil, errNotFound(s.hcRel(k))
	}
	return h.obj, nil
}

func (s *Server) listHC(c *call) (any, *apiError) {
	p, err := parseList(c.r)
	if err != nil {
		return nil, err
	}
	region := c.r.PathValue("region")
	s.mu.RLock()
	var all []*compute.HealthCheck
	for k, h := range s.st.hcs {
		if k.region == region {
			all = append(all, h.obj)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *compute.HealthCheck) int { return strings.Compare(a.Name, b.Name) })
	items, next, err := pageByName(all, func(h *compute.HealthCheck) string { return h.Name }, p)
	if err != nil {
		return nil, err
	}
	return &compute.HealthCheckList{Kind: "compute#healthCheckList", Items: items, NextPageToken: next,
		SelfLink: s.link(append(scopeParts(region), "healthChecks")...)}, nil
}

func (s *Server) insertHC(c *call) (any, *apiError) {
	var in compute.HealthCheck
	if err := decodeBody(c.r, &in); err != nil {
		return nil, err
	}
	k := scopeKey{c.r.PathValue("region"), in.Name}
	s.mu.RLock()
	_, err := s.validateHC(k, &in)
	exists := s.st.hcs[k] != nil
	s.mu.RUnlock()
	switch {
	case err != nil:
		return nil, err
	case exists:
		return nil, errAlreadyExists(s.hcRel(k))
	}
	id := newID()
	return s.startOp(c, opSpec{opType: "insert", region: k.region, target: linkPrefix + s.hcRel(k), targetID: id,
		apply: func(now time.Time) *apiError {
			if s.st.hcs[k] != nil {
				return errAlreadyExists(s.hcRel(k))
			}
			obj, err := s.validateHC(k, &in)
			if err != nil {
				return err
			}
			obj.Id, obj.CreationTimestamp = id, timestamp(now)
			s.st.hcs[k] = &healthCheck{obj: obj}
			return nil
		}})
}

func (s *Server) updateHC(c *call) (any, *apiError) {
	var in compute.HealthCheck
	if err := decodeBody(c.r, &in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		in.Name = c.r.PathValue("hc")
	}
	return s.writeHC(c, "update", &in)
}

// patchHC applies a JSON merge patch to the health check.
func (s *Server) patchHC(c *call) (any, *apiError) {
	k := pathScoped(c.r, "hc")
	data, err := readBody(c.r)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	h := s.st.hcs[k]
	s.mu.RUnlock()
	if h == nil {
		return nil, errNotFound(s.hcRel(k))
	}
	merged, _, err := mergePatch(h.obj, data)
	if err != nil {
		return nil, err
	}
	var in compute.HealthCheck
	if err := decodeStrict(merged, &in); err != nil {
		return nil, err
	}
	return s.writeHC(c, "patch", &in)
}

func (s *Server) writeHC(c *call, opType string, in *compute.HealthCheck) (any, *apiError) {
	k := pathScoped(c.r, "hc")
	s.mu.RLock()
	cur := s.st.hcs[k]
	var err *apiError
	if cur != nil {
		_, err = s.validateHC(k, in)
	}
	s.mu.RUnlock()
	switch {
	case cur == nil:
		return nil, errNotFound(s.hcRel(k))
	case err != nil:
		return nil, err
	}
	return s.startOp(c, opSpec{opType: opType, region: k.region, target: cur.obj.SelfLink, targetID: cur.obj.Id,
		apply: func(time.Time) *apiError {
			prev := s.st.hcs[k]
			if prev == nil {
				return errNotFound(s.hcRel(k))
			}
			obj, err := s.validateHC(k, in)
			if err != nil {
				return err
			}
			obj.Id, obj.CreationTimestamp = prev.obj.Id, prev.obj.CreationTimestamp
			s.st.hcs[k] = &healthCheck{obj: obj}
			return nil
		}})
}

// hcUser returns a backend service that uses the health check, if any. Called with s.mu held.
func (s *Server) hcUser(k scopeKey) (string, bool) {
	var users []string
	for bk, b := range s.st.backends {
		if b.hc == k {
			users = append(users, s.bsRel(bk))
		}
	}
	if len(users) == 0 {
		return "", false
	}
	slices.Sort(users)
	return users[0], true
}

func (s *Server) deleteHC(c *call) (any, *apiError) {
	k := pathScoped(c.r, "hc")
	s.mu.RLock()
	cur := s.st.hcs[k]
	user, inUse := s.hcUser(k)
	s.mu.RUnlock()
	switch {
	case cur == nil:
		return nil, errNotFound(s.hcRel(k))
	case inUse:
		return nil, errInUse("health_check", s.hcRel(k), user)
	}
	return s.startOp(c, opSpec{opType: "delete", region: k.region, target: cur.obj.SelfLink, targetID: cur.obj.Id,
		apply: func(time.Time) *apiError {
			if s.st.hcs[k] == nil {
				return errNotFound(s.hcRel(k))
			}
			if user, inUse := s.hcUser(k); inUse {
				return errInUse("health_check", s.hcRel(k), user)
			}
			delete(s.st.hcs, k)
			return nil
		}})
}
