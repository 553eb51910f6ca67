package annotation

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/neg-controller/neg-controller/pkg/naming"
)

// Annotation keys.
const (
	// NEGKey is the user-written annotation requesting NEGs for a Service.
	NEGKey = "cloud.google.com/neg"
	// NEGStatusKey is the controller-written annotation reporting NEG names and zones.
	NEGStatusKey = "cloud.google.com/neg-status"
)

// Event reasons carried by Error.Reason.
const (
	// ReasonInvalid: the annotation is not valid JSON for Config.
	ReasonInvalid = "InvalidNEGAnnotation"
	// ReasonUnknownPort: exposed_ports names a port the Service does not have.
	ReasonUnknownPort = "UnknownNEGPort"
	// ReasonInvalidCustomName: a custom NEG name is not a valid GCE name or is used with ingress.
	ReasonInvalidCustomName = "InvalidCustomNEGName"
	// ReasonDuplicateCustomName: two ports of the Service share one custom NEG name.
	ReasonDuplicateCustomName = "DuplicateCustomNEGName"
	// ReasonInvalidStatus: the cloud.google.com/neg-status annotation is not valid JSON for Status.
	ReasonInvalidStatus = "InvalidNEGStatusAnnotation"
)

// PortConfig configures the standalone NEG of one exposed Service port.
type PortConfig struct {
	// Name is the custom NEG name; empty means the generated name.
	Name string `json:"name,omitempty"`
}

// Config is the parsed cloud.google.com/neg annotation.
type Config struct {
	// Ingress requests NEGs for the Service ports referenced by GCE-class Ingresses.
	Ingress bool `json:"ingress,omitempty"`
	// ExposedPorts requests a standalone NEG per listed Service port (spec.ports[].port).
	ExposedPorts map[int32]PortConfig `json:"exposed_ports,omitempty"`
	// Zones lists zones to pre-provision NEGs in; "*" means all zones of the region.
	Zones []string `json:"zones,omitempty"`
}

// Error is a validation problem a user must fix. Reason is a CamelCase event reason (one of the
// Reason constants); Message is the human-readable explanation.
type Error struct {
	Reason  string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Parse decodes an annotation value. It checks JSON syntax and types only (a key of exposed_ports
// must be an int32 in decimal); it does not compare against a Service. Errors are *Error with
// Reason ReasonInvalid.
func Parse(value string) (Config, error) { return parse(NEGKey, value) }

// parse is Parse for the annotation key (NEGKey or HybridNEGKey), which the error names.
func parse(key, value string) (Config, error) {
	var cfg Config
	if err := json.Unmarshal([]byte(value), &cfg); err != nil {
		what := "NEG annotation"
		if key != NEGKey {
			what = "annotation " + key
		}
		return Config{}, &Error{Reason: ReasonInvalid, Message: what + " is invalid: " + err.Error()}
	}
	return cfg, nil
}

// FromService returns the parsed and validated cloud.google.com/neg annotation of svc. ok is false
// when svc is nil or has no such annotation. When the annotation is present but invalid, ok is true,
// cfg is zero and err is an *Error. Checks run in this order and the first failing one is reported:
//
//	JSON syntax or types                      ReasonInvalid
//	exposed port not in spec.ports[].port     ReasonUnknownPort (all such ports, ascending)
//	custom name with "ingress": true          ReasonInvalidCustomName (GKE's message)
//	custom name not a valid GCE name          ReasonInvalidCustomName (all such names)
//	custom name starting k8s1- or k8s2-       ReasonInvalidCustomName (reserved: generated names)
//	custom name shared by two or more ports   ReasonDuplicateCustomName
func FromService(svc *corev1.Service) (cfg Config, ok bool, err error) {
	return fromService(svc, NEGKey)
}

// fromService is FromService for the annotation key (NEGKey or HybridNEGKey).
func fromService(svc *corev1.Service, key string) (cfg Config, ok bool, err error) {
	if svc == nil {
		return Config{}, false, nil
	}
	value, ok := svc.Annotations[key]
	if !ok {
		return Config{}, false, nil
	}
	cfg, err = parse(key, value)
	if err != nil {
		return Config{}, true, err
	}
	if err := validate(cfg, svc, key); err != nil {
		return Config{}, true, err
	}
	return cfg, true, nil
}

// validate runs the Service-dependent checks of FromService on a parsed config; key is the
// annotation the messages name.
func validate(cfg Config, svc *corev1.Service, key string) *Error {
	ports := slices.Sorted(maps.Keys(cfg.ExposedPorts))
	if err := checkPortsExist(ports, svc, key); err != nil {
		return err
	}
	if err := checkCustomNames(cfg, ports, svc, key); err != nil {
		return err
	}
	return nil
}

func checkPortsExist(ports []int32, svc *corev1.Service, key string) *Error {
	var unknown []string
	for _, p := range ports {
		if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Port == p }) {
			unknown = append(unknown, strconv.Itoa(int(p)))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return &Error{
		Reason:  ReasonUnknownPort,
		Message: fmt.Sprintf("port %s specified in %q doesn't exist in the service", strings.Join(unknown, ", "), key),
	}
}

func checkCustomNames(cfg Config, ports []int32, svc *corev1.Service, key string) *Error {
	var invalid, reserved []string
	byName := map[string][]int32{}
	var names []string // in order of first use, ports ascending
	for _, p := range ports {
		name := cfg.ExposedPorts[p].Name
		if name == "" {
			continue
		}
		if cfg.Ingress {
			return &Error{
				Reason: ReasonInvalidCustomName,
				Message: fmt.Sprintf("configuration for negs in service (%s/%s) is invalid, custom neg name cannot be used with ingress enabled",
					svc.Namespace, svc.Name),
			}
		}
		if !naming.IsValidName(name) {
			invalid = append(invalid, fmt.Sprintf("%q (port %d)", name, p))
		} else if naming.LooksGenerated(name) {
			reserved = append(reserved, fmt.Sprintf("%q (port %d)", name, p))
		}
		if _, seen := byName[name]; !seen {
			names = append(names, name)
		}
		byName[name] = append(byName[name], p)
	}
	if len(invalid) > 0 {
		return &Error{
			Reason: ReasonInvalidCustomName,
			Message: fmt.Sprintf("custom NEG name %s in %q is invalid: a NEG name must be 1-63 characters long, "+
				"start with a lowercase letter, contain only lowercase letters, digits and '-', and not end with '-'",
				strings.Join(invalid, ", "), key),
		}
	}
	if len(reserved) > 0 {
		return &Error{
			Reason: ReasonInvalidCustomName,
			Message: fmt.Sprintf("custom NEG name %s in %q is reserved: names starting with \"k8s1-\" or \"k8s2-\" are "+
				"generated NEG names (another Service's NEG may carry it); choose a name without that prefix",
				strings.Join(reserved, ", "), key),
		}
	}
	var dups []string
	for _, name := range names {
		if ps := byName[name]; len(ps) > 1 {
			dups = append(dups, fmt.Sprintf("%q (ports %s)", name, joinPorts(ps)))
		}
	}
	if len(dups) > 0 {
		return &Error{
			Reason:  ReasonDuplicateCustomName,
			Message: fmt.Sprintf("custom NEG name %s in %q is used for more than one port; each port needs its own NEG", strings.Join(dups, ", "), key),
		}
	}
	return nil
}

func joinPorts(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ", ")
}
