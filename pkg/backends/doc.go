// Package backends keeps GCE backend services in step with the NEGs of annotated Services: every
// zonal NEG of a Service port named in the controller.autoneg.dev/neg annotation (the format of
// GoogleCloudPlatform/gke-autoneg-controller, read unchanged) is a backend of the backend services
// listed for that port, with the requested balancing mode.
//
// The package has a pure core and a reconciler around it.
//
//   - Plan (plan.go) computes a backend service's next backends list from the list as read, the
//     Service's desired NEG backends and an ownership predicate. It never touches a backend that
//     is not one of the Service's own NEGs. SettingsFor derives balancing mode, limits and
//     capacity from an annotation entry and the backend service's protocol, and refuses what GCE
//     would refuse. AllowList (allow.go) decides which backend services may be modified at all.
//
//   - Reconciler (reconciler.go) has its own work queue keyed by Service. The NEG controller
//     calls Update after every sync of a Service with what it knows (the Service, its NEGs per
//     port and zone, the NEGs of this cluster it owns); Update only enqueues the Service when
//     that changed or when the periodic verify is due, so a steady state costs no GCE call
//     between verifies. A worker then, per backend service: reads it (with its fingerprint),
//     plans, and writes the complete backends list only if it differs, retrying a 412 (stale
//     fingerprint) with a fresh read a bounded number of times with jittered delays.
//
// Ownership. A backend belongs to a Service when its group is the URL of a NEG whose ownership
// description names this cluster and that Service (the NEG controller's index, pkg/negindex).
// Only those are added, changed or removed; backends of other clusters sharing the backend
// service and hand-added ones are copied back exactly as read. The backend services a Service
// may still hold NEGs in are tracked: those of its annotation, those of its
// controller.autoneg.dev/neg-status annotation (written after every reconcile, in autoneg's
// format, so the record survives restarts), and those written to since the start. When a port,
// the annotation or the Service goes away, the Service's NEGs are removed from the tracked
// backend services.
//
// Ordering. Holds reports whether a NEG may still be a backend of a tracked backend service; the
// NEG controller does not delete a NEG while it is held, and OnReleased tells it when to look
// again, so a NEG is removed from backend services before it is deleted and deleting it does
// not fail with resourceInUseByAnotherResource.
//
// Safety. Only backend services the AllowList admits are read for writing or modified; any
// other reference is a Warning event. Invalid input (annotation, unknown or mis-regioned backend
// service, a balancing mode the protocol does not take, more than 50 backends) is a Warning
// event and no write at all to that backend service.
//
// Wiring. pkg/app builds the Reconciler's Config and hands the NEG controller a factory
// (controller.Config.NewBackends); the controller calls it once with the two things only it has,
// Events (its warning memory) and the requeue that becomes OnReleased.
package backends
