package backends

import (
	"fmt"
	"slices"
	"strings"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/gce"
)

// Balancing modes of zonal NEG backends.
const (
	ModeRate       = "RATE"
	ModeConnection = "CONNECTION"
)

// Limits used when an annotation entry gives neither max_rate_per_endpoint nor
// max_connections_per_endpoint; the mode then follows the backend service's protocol.
const (
	DefaultMaxRatePerEndpoint        = 100
	DefaultMaxConnectionsPerEndpoint = 100
)

// Settings are what the backend of one NEG must look like.
type Settings struct {
	Mode                      string
	MaxRatePerEndpoint        float64
	MaxConnectionsPerEndpoint int64
	// Capacity is the capacity scaler (0 or 0.1–1) a new backend gets; with EnforceCapacity an
	// existing backend is set to it too, otherwise its capacity is left as it is.
	Capacity        float64
	EnforceCapacity bool
}

// protocolModes returns the balancing modes zonal NEG backends may use on a backend service of
// protocol p: HTTP-family load balancers balance by request rate (GCE refuses CONNECTION), proxy
// and passthrough ones by connections.
func protocolModes(p string) []string {
	switch strings.ToUpper(p) {
	case "", "HTTP", "HTTPS", "HTTP2", "GRPC", "H2C":
		return []string{ModeRate}
	case "UNSPECIFIED":
		return []string{ModeRate, ModeConnection}
	}
	return []string{ModeConnection}
}

// SettingsFor derives the settings of an autoneg entry for a backend service of the given
// protocol:
//
//	max_rate_per_endpoint > 0                  RATE with that rate (autoneg's precedence)
//	else max_connections_per_endpoint > 0      CONNECTION with that limit
//	else                                       the protocol's mode with the default limit
//	capacity_scaler, else initial_capacity     capacity of new backends (percent / 100), default 1
//	capacity_scaler with syncCapacity          also enforced on existing backends
//
// A mode the protocol does not take is an error naming the field to use instead.
func SettingsFor(e annotation.AutonegBackend, protocol string, syncCapacity bool) (Settings, error) {
	modes := protocolModes(protocol)
	var s Settings
	switch {
	case e.MaxRatePerEndpoint > 0:
		s.Mode, s.MaxRatePerEndpoint = ModeRate, e.MaxRatePerEndpoint
	case e.MaxConnectionsPerEndpoint > 0:
		s.Mode, s.MaxConnectionsPerEndpoint = ModeConnection, int64(e.MaxConnectionsPerEndpoint)
	case modes[0] == ModeRate:
		s.Mode, s.MaxRatePerEndpoint = ModeRate, DefaultMaxRatePerEndpoint
	default:
		s.Mode, s.MaxConnectionsPerEndpoint = ModeConnection, DefaultMaxConnectionsPerEndpoint
	}
	if !slices.Contains(modes, s.Mode) {
		field, other := "max_rate_per_endpoint", "max_connections_per_endpoint"
		if s.Mode == ModeConnection {
			field, other = other, field
		}
		return Settings{}, fmt.Errorf("balancing mode %s (%s) is not supported by backend service %q of protocol %s; use %s",
			s.Mode, field, e.Ref(), protocol, other)
	}
	s.Capacity = 1
	switch {
	case e.CapacityScaler != nil:
		s.Capacity, s.EnforceCapacity = float64(*e.CapacityScaler)/100, syncCapacity
	case e.InitialCapacity != nil:
		s.Capacity = float64(*e.InitialCapacity) / 100
	}
	return s, nil
}

// Result is the outcome of Plan.
type Result struct {
	// Backends is the complete list to write.
	Backends []gce.Backend
	// Added, Updated and Removed are the groups Plan changed; Ours are the groups of the
	// Service's NEGs in Backends. All hold resource paths (projects/…), sorted.
	Added, Updated, Removed, Ours []string
}

// Changed reports whether Backends differs from the list Plan was given.
func (r Result) Changed() bool { return len(r.Added)+len(r.Updated)+len(r.Removed) > 0 }

// Plan computes the backends list of a backend service after reconciling one Service.
// current is the list as read; desired maps the resource path (gce.ResourcePath) of each NEG
// of the Service that must be a backend to its settings; ours reports whether a group is one of
// the Service's own NEGs (the desired ones always are).
//
//	backend                                   result
//	not ours                                  kept exactly as read, in place
//	ours, desired, same mode/limits           kept (capacity too, unless enforced and different)
//	ours, desired, other mode/limits          updated in place; capacity kept unless enforced
//	ours, not desired                         removed
//	desired, absent                           appended, ordered by group, with Settings.Capacity
//	ours, listed twice (GCE forbids it)       the first is handled, the others are removed
//
// Plan neither reads nor writes anything and never returns backends of others changed.
func Plan(current []gce.Backend, desired map[string]Settings, ours func(group string) bool) Result {
	var r Result
	seen := map[string]bool{}
	for _, b := range current {
		p := gce.ResourcePath(b.Group)
		_, want := desired[p]
		mine := want || ours(b.Group)
		switch {
		case !mine:
			r.Backends = append(r.Backends, b)
		case !want || seen[p]:
			r.Removed = append(r.Removed, p)
		default:
			seen[p] = true
			next := apply(b, desired[p])
			if !next.SameSettings(b) {
				r.Updated = append(r.Updated, p)
			}
			r.Backends = append(r.Backends, next)
			r.Ours = append(r.Ours, p)
		}
	}
	var added []string
	for p := range desired {
		if !seen[p] {
			added = append(added, p)
		}
	}
	slices.Sort(added)
	for _, p := range added {
		s := desired[p]
		r.Backends = append(r.Backends, gce.Backend{Group: groupURL(p), BalancingMode: s.Mode,
			MaxRatePerEndpoint: s.MaxRatePerEndpoint, MaxConnectionsPerEndpoint: s.MaxConnectionsPerEndpoint, CapacityScaler: s.Capacity})
	}
	r.Added = added
	r.Ours = append(r.Ours, added...)
	slices.Sort(r.Ours)
	slices.Sort(r.Updated)
	slices.Sort(r.Removed)
	r.Removed = slices.Compact(r.Removed)
	return r
}

// apply returns the existing backend b of one of our NEGs with the settings s.
func apply(b gce.Backend, s Settings) gce.Backend {
	b.BalancingMode = s.Mode
	b.MaxRatePerEndpoint = s.MaxRatePerEndpoint
	b.MaxConnectionsPerEndpoint = s.MaxConnectionsPerEndpoint
	if s.EnforceCapacity {
		b.CapacityScaler = s.Capacity
	}
	return b
}

// groupURL turns a resource path back into the fully-qualified URL Backend.group requires.
func groupURL(path string) string {
	if strings.HasPrefix(path, "projects/") {
		return "https://www.googleapis.com/compute/v1/" + path
	}
	return path
}

// CheckCount returns an error when r would give the backend service more backends than GCE
// allows (and r adds some: a list that is already too long is not made worse by removals).
func CheckCount(r Result) error {
	if len(r.Backends) > gce.MaxBackendsPerService && len(r.Added) > 0 {
		return fmt.Errorf("adding %d backend(s) would give it %d backends; GCE allows at most %d",
			len(r.Added), len(r.Backends), gce.MaxBackendsPerService)
	}
	return nil
}
