// Package svcneg is the ServiceNetworkEndpointGroup API (networking.gke.io/v1beta1, short name
// svcneg) as GKE defines it: the typed objects, a small client over the dynamic client (typed
// ↔ unstructured with runtime.DefaultUnstructuredConverter, so no generated clientset), and the
// status computation as pure functions. The CRD itself is the optional kustomize component
// manifests/components/svcneg-crd/ (GKE's CRD as ingress-gce installs it); the controller never
// installs it.
//
// One object exists per NEG name (that is, per Service port), in the Service's namespace, named
// after the NEG. It carries GKE's labels (networking.gke.io/managed-by=neg-controller,
// networking.gke.io/service-name, networking.gke.io/service-port) and a controller owner
// reference to the Service (blockOwnerDeletion false), so the garbage collector deletes it with
// the Service. It also carries our label neg-controller.io/created-by=neg-controller: GKE's NEG
// controller makes objects with the same labels and owner reference, and only this label tells
// ours apart. Its status lists the NEG of every zone (id, selfLink, networkEndpointType,
// state) and the conditions Initialized and Synced.
//
// Invariants:
//   - Observe (what one sync saw of a Service port's NEGs → the conditions), NextStatus,
//     SetOwner, New, BelongsTo and StatusEqual are pure: no API calls, no clocks
//     (the caller passes now), no globals; NextStatus and StatusEqual never modify inputs.
//   - A condition's lastTransitionTime changes only when its status flips; lastSyncTime changes
//     only when something else in the status changed. A sync that changes nothing yields no
//     write, so lastSyncTime is the time of the last sync that changed the status.
//   - No finalizer of ours, so deleting one of our objects (or its namespace) always terminates;
//     NEGs are cleaned up by their ownership description, never by holding this object.
//   - Objects without our label (GKE's, with its networking.gke.io/neg-finalizer) are never
//     written, deleted or stripped of a finalizer: BelongsTo is false for them.
package svcneg
