package wanted

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
	"github.com/neg-controller/neg-controller/pkg/negindex"
)

// CustomNameIndex is the name of the Service index by the custom NEG names their annotation
// claims (IndexCustomNames); Resolver.Claims must have it.
const CustomNameIndex = "negCustomName"

// IndexCustomNames is the Service indexer function of CustomNameIndex.
func IndexCustomNames(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	return ClaimedNames(svc), nil
}

// ClaimedNames returns the custom NEG names of a Service's valid annotation (either one), sorted.
func ClaimedNames(svc *corev1.Service) []string {
	src, ok, err := annotation.SourceOf(svc, false) // the NEG type does not matter here
	if !ok || err != nil {
		return nil
	}
	cfg, ok, err := annotation.FromSource(svc, src)
	if !ok || err != nil {
		return nil
	}
	var out []string
	for _, pc := range cfg.ExposedPorts {
		if pc.Name != "" {
			out = append(out, pc.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Claimants returns the Services of claims (indexed by CustomNameIndex) whose annotation
// claims the custom NEG name.
func Claimants(claims cache.Indexer, name string) ([]*corev1.Service, error) {
	objs, err := claims.ByIndex(CustomNameIndex, name)
	if err != nil {
		return nil, fmt.Errorf("looking up claims of NEG name %q: %w", name, err)
	}
	out := make([]*corev1.Service, 0, len(objs))
	for _, o := range objs {
		if s, ok := o.(*corev1.Service); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// checkNameClaims rejects svc if it may not use one of its custom names:
//
//   - with RequireNamespacePrefix, a name must start with "<namespace>-";
//   - a NEG of that name that exists and whose description names another Service belongs to
//     that Service for as long as it exists: every other claim is refused, however old, so no
//     annotation in any namespace can take over (and freeze) a NEG in use;
//   - only when no NEG of the name exists does the oldest claimant win (then namespace/name).
//
// A refusal is a NEGNameConflict (or InvalidCustomNEGName) on the claimant, never on the owner:
// the owner's check passes by the second rule whatever others claim.
func (r *Resolver) checkNameClaims(svc *corev1.Service, want map[int32]Port) error {
	for _, port := range slices.Sorted(maps.Keys(want)) {
		p := want[port]
		if !p.Custom {
			continue
		}
		if r.RequireNamespacePrefix && !strings.HasPrefix(p.Name, svc.Namespace+"-") {
			return &annotation.Error{Reason: annotation.ReasonInvalidCustomName, Message: fmt.Sprintf(
				"custom NEG name %q (port %d) must start with %q: this cluster requires custom NEG names to "+
					"start with the Service's namespace", p.Name, port, svc.Namespace+"-")}
		}
		if owner, ok := ExistingOwner(r.Index, p.Name); ok {
			if owner.Namespace == svc.Namespace && owner.Name == svc.Name {
				continue
			}
			return &annotation.Error{Reason: ReasonNEGNameConflict, Message: fmt.Sprintf(
				"custom NEG name %q (port %d) is the name of an existing NEG that belongs to Service %s/%s; "+
					"choose another name: nothing is done for this Service until the conflict is resolved",
				p.Name, port, owner.Namespace, owner.Name)}
		}
		claimants, err := Claimants(r.Claims, p.Name)
		if err != nil {
			return err
		}
		if w := NameWinner(svc, claimants); w != nil {
			return &annotation.Error{Reason: ReasonNEGNameConflict, Message: fmt.Sprintf(
				"custom NEG name %q (port %d) is already claimed by Service %s/%s, which was created earlier; "+
					"choose another name: nothing is done for this Service until the conflict is resolved",
				p.Name, port, w.Namespace, w.Name)}
		}
	}
	return nil
}

// ExistingOwner returns the Service an existing NEG called name belongs to: the Service its
// description names, when the description names this cluster (ours, or ours but for type or
// network: such a NEG is still not free to claim). ok is false when no such NEG exists — no
// NEG of the name, or only NEGs of other clusters or users, which the controller refuses per
// zone.
func ExistingOwner(index *negindex.Index, name string) (cache.ObjectName, bool) {
	for _, e := range index.Named(name) {
		if e.Verdict != negindex.NotOurs && e.Description.Namespace != "" && e.Description.ServiceName != "" {
			return e.Service(), true
		}
	}
	return cache.ObjectName{}, false
}

// NameWinner returns the Service that wins a custom NEG name over svc among claimants (the
// Services whose annotation claims the name; svc may be among them), or nil if svc wins. The
// winner is the oldest by creationTimestamp, then the first by namespace/name.
func NameWinner(svc *corev1.Service, claimants []*corev1.Service) *corev1.Service {
	best := svc
	for _, s := range claimants {
		if s.Namespace == svc.Namespace && s.Name == svc.Name {
			continue
		}
		if claimsBefore(s, best) {
			best = s
		}
	}
	if best == svc {
		return nil
	}
	return best
}

// claimsBefore reports whether a's claim ranks before b's: older first, then by
// namespace/name.
func claimsBefore(a, b *corev1.Service) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	ka, kb := cache.MetaObjectToName(a).String(), cache.MetaObjectToName(b).String()
	return ka < kb
}
