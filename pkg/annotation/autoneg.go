package annotation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/neg-controller/neg-controller/pkg/naming"
)

// Annotation keys of GoogleCloudPlatform/gke-autoneg-controller, read and written unchanged so
// that a Service can move between that controller and this one without manifest changes.
const (
	// AutonegKey is the user-written annotation naming the backend services a port's NEGs join.
	AutonegKey = "controller.autoneg.dev/neg"
	// AutonegStatusKey is the controller-written annotation reporting what was done.
	AutonegStatusKey = "controller.autoneg.dev/neg-status"
	// AutonegSyncKey is the user-written annotation {"capacity_scaler":true} that makes
	// capacity_scaler apply to backends that already exist (not only to new ones).
	AutonegSyncKey = "controller.autoneg.dev/sync"
)

// ReasonInvalidAutoneg is the reason of every autoneg annotation error.
const ReasonInvalidAutoneg = "InvalidAutonegAnnotation"

// Autoneg is the parsed controller.autoneg.dev/neg annotation (with controller.autoneg.dev/sync).
type Autoneg struct {
	// BackendServices maps a Service port number to the backend services its NEGs join.
	BackendServices map[int32][]AutonegBackend
	// SyncCapacityScaler is controller.autoneg.dev/sync's capacity_scaler: CapacityScaler is
	// enforced on existing backends too.
	SyncCapacityScaler bool
}

// AutonegBackend is one backend service entry. Its JSON form is autoneg's, in the annotation and
// in the status; on input, numbers may also be JSON strings ("100"), as autoneg accepts them.
type AutonegBackend struct {
	// Name of the backend service; empty in the annotation means "{service}-{port}" (autoneg's
	// default template), filled in by AutonegFromService.
	Name string `json:"name,omitempty"`
	// Region of a regional backend service; empty for a global one.
	Region string `json:"region,omitempty"`
	// MaxRatePerEndpoint > 0 asks for balancing mode RATE.
	MaxRatePerEndpoint float64 `json:"max_rate_per_endpoint,omitempty"`
	// MaxConnectionsPerEndpoint > 0 (and no rate) asks for balancing mode CONNECTION.
	MaxConnectionsPerEndpoint float64 `json:"max_connections_per_endpoint,omitempty"`
	// InitialCapacity is the capacity scaler in percent (0–100) of backends when they are added.
	InitialCapacity *int32 `json:"initial_capacity,omitempty"`
	// CapacityScaler is like InitialCapacity, and is also enforced on existing backends when
	// Autoneg.SyncCapacityScaler is set.
	CapacityScaler *int32 `json:"capacity_scaler,omitempty"`
}

// Ref returns "name" for a global and "region/name" for a regional backend service.
func (b AutonegBackend) Ref() string {
	if b.Region == "" {
		return b.Name
	}
	return b.Region + "/" + b.Name
}

// autonegBackendJSON is the input form of AutonegBackend: numbers or numeric strings.
type autonegBackendJSON struct {
	Name                      string          `json:"name"`
	Region                    string          `json:"region"`
	MaxRatePerEndpoint        flexNumber      `json:"max_rate_per_endpoint"`
	MaxConnectionsPerEndpoint flexNumber      `json:"max_connections_per_endpoint"`
	InitialCapacity           flexNumber      `json:"initial_capacity"`
	CapacityScaler            flexNumber      `json:"capacity_scaler"`
	CustomMetrics             json.RawMessage `json:"custom_metrics"`
}

// UnmarshalJSON accepts autoneg's entry with numbers given as numbers or strings. It checks
// types and ranges: limits are non-negative (connections whole), capacities whole percentages
// 0–100; custom_metrics is refused (CUSTOM_METRICS balancing is not supported).
func (b *AutonegBackend) UnmarshalJSON(data []byte) error {
	var in autonegBackendJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	if len(in.CustomMetrics) > 0 && string(in.CustomMetrics) != "null" {
		return fmt.Errorf("backend service %q: custom_metrics (balancing mode CUSTOM_METRICS) is not supported by neg-controller", in.Name)
	}
	out := AutonegBackend{Name: in.Name, Region: in.Region}
	var err error
	if out.MaxRatePerEndpoint, err = in.MaxRatePerEndpoint.nonNegative("max_rate_per_endpoint", false); err != nil {
		return err
	}
	if out.MaxConnectionsPerEndpoint, err = in.MaxConnectionsPerEndpoint.nonNegative("max_connections_per_endpoint", true); err != nil {
		return err
	}
	if out.InitialCapacity, err = in.InitialCapacity.percent("initial_capacity"); err != nil {
		return err
	}
	if out.CapacityScaler, err = in.CapacityScaler.percent("capacity_scaler"); err != nil {
		return err
	}
	*b = out
	return nil
}

// flexNumber is a JSON number, a string holding one, or absent/null.
type flexNumber struct {
	v   float64
	set bool
}

func (n *flexNumber) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if string(data) == "null" {
		return nil
	}
	text := string(data)
	if strings.HasPrefix(text, `"`) {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		text = strings.TrimSpace(s)
		if text == "" {
			return nil
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%s is not a number", string(data))
	}
	n.v, n.set = f, true
	return nil
}

func (n flexNumber) nonNegative(field string, whole bool) (float64, error) {
	switch {
	case !n.set:
		return 0, nil
	case n.v < 0:
		return 0, fmt.Errorf("%s must not be negative, got %v", field, n.v)
	case whole && n.v != math.Trunc(n.v):
		return 0, fmt.Errorf("%s must be a whole number, got %v", field, n.v)
	}
	return n.v, nil
}

// percent checks a capacity in percent: a whole number in 0–100 that GCE can take (its
// capacityScaler is 0 or 0.1–1.0, so 1–9 % are refused).
func (n flexNumber) percent(field string) (*int32, error) {
	if !n.set {
		return nil, nil
	}
	if n.v != math.Trunc(n.v) || n.v < 0 || n.v > 100 {
		return nil, fmt.Errorf("%s must be a whole number between 0 and 100 (percent), got %v", field, n.v)
	}
	if n.v > 0 && n.v < 10 {
		return nil, fmt.Errorf("%s must be 0 or between 10 and 100: GCE's capacity scaler is 0 or 0.1 to 1.0, got %v", field, n.v)
	}
	p := int32(n.v)
	return &p, nil
}

// ParseAutoneg decodes a controller.autoneg.dev/neg value: JSON syntax, types and value ranges,
// port keys (decimal port numbers 1–65535), backend service names and regions (GCE names; an
// empty name is left empty), and no backend service twice for one port. Errors are *Error with
// Reason ReasonInvalidAutoneg.
func ParseAutoneg(value string) (Autoneg, error) {
	var raw struct {
		BackendServices map[string][]AutonegBackend `json:"backend_services"`
	}
	fail := func(format string, args ...any) (Autoneg, error) {
		return Autoneg{}, &Error{Reason: ReasonInvalidAutoneg, Message: fmt.Sprintf("%s annotation is invalid: ", AutonegKey) + fmt.Sprintf(format, args...)}
	}
	if err := json.Unmarshal([]byte(value), &raw); err != nil {
		return fail("%v", err)
	}
	out := Autoneg{BackendServices: map[int32][]AutonegBackend{}}
	for key, list := range raw.BackendServices {
		port, err := strconv.ParseInt(strings.TrimSpace(key), 10, 32)
		if err != nil || port < 1 || port > 65535 {
			return fail("%q is not a port number", key)
		}
		seen := map[string]bool{}
		for _, b := range list {
			if b.Name != "" && !naming.IsValidName(b.Name) {
				return fail("backend service name %q (port %d) is not a valid GCE name", b.Name, port)
			}
			if b.Region != "" && !naming.IsValidName(b.Region) {
				return fail("region %q of backend service %q (port %d) is not a valid region name", b.Region, b.Name, port)
			}
			if b.Name != "" && seen[b.Name] {
				return fail("backend service %q is listed twice for port %d", b.Name, port)
			}
			seen[b.Name] = true
		}
		out.BackendServices[int32(port)] = list
	}
	return out, nil
}

// AutonegFromService returns the parsed autoneg annotation of svc, with empty backend service
// names replaced by autoneg's default "{service}-{port}" and controller.autoneg.dev/sync applied.
// ok is false when svc is nil or has no such annotation. An invalid annotation gives ok true
// and an *Error.
func AutonegFromService(svc *corev1.Service) (cfg Autoneg, ok bool, err error) {
	if svc == nil {
		return Autoneg{}, false, nil
	}
	value, ok := svc.Annotations[AutonegKey]
	if !ok {
		return Autoneg{}, false, nil
	}
	cfg, err = ParseAutoneg(value)
	if err != nil {
		return Autoneg{}, true, err
	}
	for port, list := range cfg.BackendServices {
		seen := map[string]bool{}
		for i := range list {
			if list[i].Name == "" {
				list[i].Name = DefaultBackendServiceName(svc.Name, port)
			}
			if seen[list[i].Name] {
				return Autoneg{}, true, &Error{Reason: ReasonInvalidAutoneg, Message: fmt.Sprintf(
					"%s annotation is invalid: backend service %q is listed twice for port %d", AutonegKey, list[i].Name, port)}
			}
			seen[list[i].Name] = true
		}
	}
	if v, has := svc.Annotations[AutonegSyncKey]; has {
		var sync struct {
			CapacityScaler bool `json:"capacity_scaler"`
		}
		if err := json.Unmarshal([]byte(v), &sync); err != nil {
			return Autoneg{}, true, &Error{Reason: ReasonInvalidAutoneg, Message: fmt.Sprintf("%s annotation is invalid: %v", AutonegSyncKey, err)}
		}
		cfg.SyncCapacityScaler = sync.CapacityScaler
	}
	return cfg, true, nil
}

// DefaultBackendServiceName is autoneg's default backend service name, "{service}-{port}",
// with the Service name shortened to fit 63 characters.
func DefaultBackendServiceName(service string, port int32) string {
	suffix := "-" + strconv.Itoa(int(port))
	if len(service)+len(suffix) > 63 {
		service = strings.TrimRight(service[:63-len(suffix)], "-")
	}
	return service + suffix
}

// AutonegStatus is the controller.autoneg.dev/neg-status annotation, in autoneg's format.
type AutonegStatus struct {
	// BackendServices maps a port to the backend services (by name) its NEGs are backends of,
	// with the configuration they were added with.
	BackendServices map[string]map[string]AutonegBackend `json:"backend_services"`
	// NetworkEndpointGroups maps a port to its NEG name; Zones are the zones whose NEGs are
	// backends.
	NetworkEndpointGroups map[string]string `json:"network_endpoint_groups"`
	Zones                 []string          `json:"zones"`
	// Sync echoes controller.autoneg.dev/sync when it is set.
	Sync *AutonegSync `json:"sync,omitempty"`
}

// AutonegSync is controller.autoneg.dev/sync.
type AutonegSync struct {
	CapacityScaler bool `json:"capacity_scaler"`
}

// String returns the compact JSON value: map keys sorted, zones sorted. s is not modified.
func (s AutonegStatus) String() string {
	out := s
	out.Zones = slices.Sorted(slices.Values(s.Zones))
	b, err := json.Marshal(out)
	if err != nil { // cannot happen: strings, finite numbers, maps and slices only
		return "{}"
	}
	return string(b)
}

// ParseAutonegStatus decodes a controller.autoneg.dev/neg-status value (written by this
// controller or by gke-autoneg-controller).
func ParseAutonegStatus(value string) (AutonegStatus, error) {
	var s AutonegStatus
	if err := json.Unmarshal([]byte(value), &s); err != nil {
		return AutonegStatus{}, &Error{Reason: ReasonInvalidAutoneg, Message: fmt.Sprintf("%s annotation is invalid: %v", AutonegStatusKey, err)}
	}
	return s, nil
}
