// Package negindex is the controller's in-memory view of the NEGs that exist in GCE and of which
// of them are its own. It answers, without a GCE call:
//
//   - does this NEG exist (Index.Get, Index.Named), so a restart with NEGs already present makes
//     no insert calls;
//   - is it ours, and for which Service (Entry.Verdict, Entry.Ours, Entry.Service), decided by
//     the ownership Rule from the NEG alone: type, description, network and name;
//   - which NEGs does a Service own (Index.OwnedBy, Index.Owners), for removal and garbage
//     collection, and which NEGs name this cluster but are not ours (Index.Unowned, a metric);
//   - did a sync of the owning Service use this custom-named NEG since the start (Entry.Claimed,
//     set with Index.MarkClaimed): the proof that the Service claimed the name.
//
// Whether a Service may act on a NEG of its own (its claim on a custom name) and whether a NEG
// serves a Service port are the controller's decisions; the index only records what they need.
//
// Invariants.
//   - The view is the last ListNEGs result (Index.Refresh) plus our own creates (Index.Put,
//     Index.Adopt) and deletes (Index.Remove) since. Every local change takes a new generation;
//     a listing started at generation g (Index.Generation before the call) never undoes a change
//     of a later generation — a slow listing neither forgets a NEG we just created nor brings
//     back one we just deleted (a deleted NEG is kept as a tombstone until a later listing).
//   - A listing is otherwise the truth: a NEG of ours it no longer shows was deleted outside the
//     controller, and Refresh returns its Service so that the NEG is created again.
//   - A NEG is ours only when the Rule says so (see Rule); everything else is never listed for a
//     Service, so no caller can detach from or delete it by going through OwnedBy.
//   - The claimed mark survives listings and local puts of the same NEG, and is dropped with it.
//   - Entries are returned as copies; the index is safe for concurrent use.
package negindex
