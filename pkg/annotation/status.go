package annotation

import (
	"encoding/json"
	"slices"
)

// Status is the cloud.google.com/neg-status annotation.
type Status struct {
	// NetworkEndpointGroups maps a Service port number (decimal string) to its NEG name.
	NetworkEndpointGroups map[string]string `json:"network_endpoint_groups,omitempty"`
	// Zones are the zones NEGs are expected in (candidate-node zones plus pre-provisioned zones).
	Zones []string `json:"zones,omitempty"`
}

// String returns the annotation value exactly as GKE writes it: compact JSON, map keys sorted,
// zones sorted ascending, empty fields omitted. s is not modified.
func (s Status) String() string {
	out := Status{NetworkEndpointGroups: s.NetworkEndpointGroups}
	if len(s.Zones) > 0 {
		out.Zones = slices.Sorted(slices.Values(s.Zones))
	}
	b, err := json.Marshal(out)
	if err != nil { // cannot happen: only strings, maps of strings and slices of strings
		return "{}"
	}
	return string(b)
}

// ParseStatus decodes a cloud.google.com/neg-status value. Zones are returned as written.
func ParseStatus(value string) (Status, error) {
	var s Status
	if err := json.Unmarshal([]byte(value), &s); err != nil {
		return Status{}, &Error{Reason: ReasonInvalidStatus, Message: "NEG status annotation is invalid: " + err.Error()}
	}
	return s, nil
}
