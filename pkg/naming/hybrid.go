package naming

import (
	"crypto/md5" // #nosec G501: a name suffix, as k8s-hybrid-neg-controller computes it; not security
	"encoding/hex"
	"strconv"
	"strings"
)

// What GoogleCloudPlatform/cloud-solutions k8s-hybrid-neg-controller puts on the NEGs it
// creates: the NEG resource's annotations field and a fixed description. These markers, not the
// name, are what identifies its NEGs (a name of it may carry the same "k8s1-{uid8}-" prefix as
// ours when both read the naming UID from kube-system/ingress-uid).
const (
	// HybridControllerCreatedByKey is the NEG annotation naming the creator.
	HybridControllerCreatedByKey = "created-by"
	// HybridControllerCreatedBy is its value.
	HybridControllerCreatedBy = "k8s-hybrid-neg-controller"
	// HybridControllerServiceKey is the NEG annotation naming the Service, "<namespace>/<name>".
	HybridControllerServiceKey = "k8s-service"
	// HybridControllerDescription is the description of its NEGs.
	HybridControllerDescription = "Kubernetes Service"
)

// IsHybridControllerNEG reports whether a NEG's description and annotations are exactly the
// markers k8s-hybrid-neg-controller writes on the NEGs it creates for Service namespace/service.
// Any difference (another Service, another creator, a description of ours) is false.
func IsHybridControllerNEG(description string, annotations map[string]string, namespace, service string) bool {
	ns, svc, ok := HybridControllerService(description, annotations)
	return ok && ns == namespace && svc == service
}

// HybridControllerService returns the Service a NEG of k8s-hybrid-neg-controller was created for
// (its k8s-service annotation, "<namespace>/<name>"); ok is false unless the description and
// the created-by annotation are that controller's and the Service reference is well formed.
func HybridControllerService(description string, annotations map[string]string) (namespace, service string, ok bool) {
	if description != HybridControllerDescription || annotations[HybridControllerCreatedByKey] != HybridControllerCreatedBy {
		return "", "", false
	}
	namespace, service, ok = strings.Cut(annotations[HybridControllerServiceKey], "/")
	if !ok || namespace == "" || service == "" || strings.Contains(service, "/") {
		return "", "", false
	}
	return namespace, service, true
}

// IsHybridControllerName reports whether name is a name k8s-hybrid-neg-controller generates for
// Service port namespace/service:port (HybridControllerName) with some cluster ID: the ID's
// first 1 to 8 characters follow "k8s1-" in the name, and the name is recomputed from each
// candidate. The md5 suffix covers namespace, Service and port, so a name of another Service
// port (or a custom name) does not match.
func IsHybridControllerName(name, namespace, service string, port int32) bool {
	rest, ok := strings.CutPrefix(name, schemaPrefix+"-")
	if !ok {
		return false
	}
	for n := 1; n <= uidLength && n < len(rest); n++ {
		if HybridControllerName(rest[:n], namespace, service, port) == name {
			return true
		}
	}
	return false
}

// HybridControllerName returns the NEG name k8s-hybrid-neg-controller generates for a Service
// port when exposed_ports gives no name: "k8s1-{id}-{namespace}-{service}-{port}" cut at its end
// to 54 characters, then "-" and the first 8 hex characters of md5(id+namespace+service+port),
// where id is the first 8 characters of its cluster ID (its --cluster-id, else the "uid" of
// ConfigMap kube-system/ingress-uid, else the UID of Service default/kubernetes, else random).
//
// It differs from NEGName (hash, hash input, and a cut at the end instead of trimming the three
// fields evenly), so the two never produce the same name for a port. That controller writes
// every name it uses into solutions.cloud.google.com/hybrid-neg-status and never renames a NEG
// listed there; a controller taking its Services over keeps those names (the status is what
// users and their load balancer configuration depend on) and generates its own, NEGName, only
// for ports that have none yet. HybridControllerName lets it tell that controller's generated
// names from custom ones, e.g. in events.
func HybridControllerName(clusterID, namespace, service string, port int32) string {
	if len(clusterID) > uidLength {
		clusterID = clusterID[:uidLength]
	}
	portStr := strconv.Itoa(int(port))
	sum := md5.Sum([]byte(clusterID + namespace + service + portStr)) // #nosec G401
	suffix := "-" + hex.EncodeToString(sum[:])[:hashLength]
	prefix := schemaPrefix + "-" + clusterID + "-" + namespace + "-" + service + "-" + portStr
	if len(prefix)+len(suffix) > maxNameLength {
		prefix = prefix[:maxNameLength-len(suffix)]
	}
	return prefix + suffix
}
