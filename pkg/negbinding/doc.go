// Package negbinding serves NetworkEndpointGroupBindings (networking.gke.io/v1beta1, short name
// negbinding; GKE's schema, kubernetes/ingress-gce pkg/apis/negbinding/v1beta1): a binding names
// a Service port (spec.backendRef) and pre-existing zonal GCE_VM_IP_PORT NEGs
// (spec.networkEndpointGroups: a name, a subnet and zones), and the controller keeps the
// endpoints of those NEGs exactly in step with the port's endpoints in each NEG's zone — as the
// AWS Load Balancer Controller's TargetGroupBinding does for target groups. The load balancer
// and its NEGs live outside Kubernetes (Terraform, say); the controller creates nothing and
// deletes nothing, it only attaches and detaches endpoints.
//
// It is a controller of its own beside pkg/controller (the annotation-driven NEGs), built from
// the same parts: pkg/keyqueue runs the work loop (one key per binding), pkg/negsync owns the
// endpoints of the bound NEGs (a Syncer of this package's own: Refresh, Apply, Progress, Done),
// pkg/endpoints and pkg/zones give the desired endpoints from the Service's EndpointSlices and
// the nodes, the dynamic client reads and writes the bindings (no generated clientset).
//
// Which NEG a binding may bind. Every zonal NEG (name × zone) of the spec is judged on its own;
// a refused one is never touched and the others are synced. In order:
//
//	--negbinding-allow does not allow the name in the namespace        NEGNotAllowed
//	the name looks generated (k8s1-…, k8s2-…: GKE-style controllers)   NEGManagedByController
//	the spec's subnet is not the cluster's (--subnetwork)             NEGSubnetMismatch
//	a Service's NEG annotation names it as a custom name (unless the    NEGConflict
//	  binding records it already: then the annotation is the one refused)
//	GCE: the NEG does not exist in the zone                            NEGNotFound (re-read every minute)
//	GCE: its description names a cluster-uid (an annotation-driven     NEGManagedByController
//	  NEG of this cluster, or of another)
//	GCE: its description is GKE's binding description for another     NEGDescriptionMismatch
//	  namespace or cluster name
//	GCE: not GCE_VM_IP_PORT                                            NEGTypeMismatch
//	GCE: not on the cluster's network (--network)                      NEGNetworkMismatch
//	GCE: not in the spec's subnet or the cluster's subnetwork          NEGSubnetMismatch
//	another binding holds it (claims.go: the one whose status records  NEGConflict
//	  it, else the first one accepted)
//
// The annotation-driven controller, for its part, never adopts a custom-named NEG without its
// own description, so the two never share a NEG whichever comes first. Permission is
// Kubernetes RBAC on the binding object: whoever may create bindings in a namespace may bind any
// NEG the rules above allow; --negbinding-allow narrows that per namespace.
//
// Record before calls. The status lists the zonal NEGs the binding manages (resourceURL,
// subnetURL); a NEG is added there, with the finalizer on the object, before the first call on
// it. A NEG that leaves the binding (spec edited, or refused now) is emptied, then leaves the
// status (Normal Released); one the binding must no longer touch (gone, another binding's,
// unsafe) leaves it as it is.
//
// In step. An accepted NEG holds exactly the endpoints of the Service port's pods on nodes of
// its zone (endpoints.Desired: terminating endpoints out, not-ready ones in); endpoints in
// zones without a bound NEG are skipped (Warning EndpointsSkipped). When the Service or its
// port does not exist, the NEGs are left as they are (BackendRefAttached False BackendNotFound
// or PortNotFound): re-creating a Service never empties a load balancer on the way.
//
// Deletion (cleanup.go) detaches what the status records and removes the finalizer, bounded by
// Config.CleanupTimeout after the deletion timestamp, so a binding never blocks its namespace's
// deletion for longer.
//
// Status. Conditions BackendRefAttached (True: every bound NEG in step; the condition to wait
// on) and NEGsAccepted (False lists each refusal), with observedGeneration; lastSyncTime is set
// when the status changes or calls finished, never on a sync that changed nothing. Events on
// the binding: Attach/Detach, failures, one Warning per refused NEG name (deduplicated).
package negbinding
