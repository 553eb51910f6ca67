package naming

import (
	"encoding/json"
	"strconv"
)

// Description is the ownership record stored as a NEG's description, as GKE writes it.
type Description struct {
	// ClusterUID is the metadata.uid of the kube-system Namespace (not the naming UID).
	ClusterUID string `json:"cluster-uid,omitempty"`
	// Namespace is the Service's namespace.
	Namespace string `json:"namespace,omitempty"`
	// ServiceName is the Service's name.
	ServiceName string `json:"service-name,omitempty"`
	// Port is the Service port number in decimal.
	Port string `json:"port,omitempty"`
}

// NewDescription returns the description for a Service port of a cluster.
func NewDescription(clusterUID, namespace, service string, port int32) Description {
	return Description{ClusterUID: clusterUID, Namespace: namespace, ServiceName: service, Port: strconv.Itoa(int(port))}
}

// String returns the compact JSON GKE stores, e.g.
// {"cluster-uid":"…","namespace":"default","service-name":"web","port":"80"}.
func (d Description) String() string {
	b, err := json.Marshal(d)
	if err != nil { // cannot happen: four strings
		return "{}"
	}
	return string(b)
}

// ParseDescription decodes a NEG description. Unknown keys are ignored; anything that is not a JSON
// object with string values for the known keys is an error.
func ParseDescription(s string) (Description, error) {
	var d Description
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return Description{}, err
	}
	return d, nil
}

// Ownership is the verdict on an existing NEG that has a name we want to use.
type Ownership int

const (
	// Foreign: the NEG belongs to someone else (another cluster or namespace, or a custom-named
	// NEG we did not describe). Never adopt, modify or delete it. It is the zero value, so an
	// unset Ownership is the safe answer.
	Foreign Ownership = iota
	// Owned: the description matches this cluster, namespace, Service and port.
	Owned
	// Adoptable: a generated-name NEG with an empty or unparseable description; treat it as ours
	// (GKE does) and write our description when convenient.
	Adoptable
	// OtherService: same cluster and namespace, but another Service or port uses it.
	OtherService
)

// String returns the constant's name.
func (o Ownership) String() string {
	switch o {
	case Foreign:
		return "Foreign"
	case Owned:
		return "Owned"
	case Adoptable:
		return "Adoptable"
	case OtherService:
		return "OtherService"
	}
	return "Ownership(" + strconv.Itoa(int(o)) + ")"
}

// Classify decides whether an existing NEG, found under a name we want, may be used for want.
// generatedName says whether the name is one our Namer generates (rather than a custom name).
//
//	existing description                              generated name   custom name
//	empty, or JSON with none of the known keys        Adoptable        Foreign
//	not parseable                                     Adoptable        Foreign       (GKE adopts both)
//	other cluster-uid or namespace                    Foreign          Foreign
//	same cluster+namespace, other service or port     OtherService     OtherService
//	same cluster, namespace, service and port         Owned            Owned
func Classify(existingDescription string, want Description, generatedName bool) Ownership {
	unowned := Foreign
	if generatedName {
		unowned = Adoptable
	}
	if existingDescription == "" {
		return unowned
	}
	got, err := ParseDescription(existingDescription)
	if err != nil || got == (Description{}) {
		return unowned
	}
	switch {
	case got.ClusterUID != want.ClusterUID || got.Namespace != want.Namespace:
		return Foreign
	case got.ServiceName != want.ServiceName || got.Port != want.Port:
		return OtherService
	}
	return Owned
}
