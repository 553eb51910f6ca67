package backends

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
)

// statusValue renders the controller.autoneg.dev/neg-status annotation in autoneg's format:
// per port, the annotation entries of the backend services that (may) hold the port's NEGs, the
// port's NEG name, and the zones of those NEGs. A backend service known to hold none of them
// (missing, refused) is left out. manage is false when the annotation must be left alone: the
// Service names no backend service this controller may modify (another autoneg may own the
// annotation), or removals are still pending. value "" with manage means "remove it".
func (r *Reconciler) statusValue(key cache.ObjectName, want Want, cfg annotation.Autoneg, has bool, targets []*target) (value string, manage bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[key]
	if !has || st == nil {
		return "", st == nil || len(st.tracked) == 0
	}
	s := annotation.AutonegStatus{
		BackendServices:       map[string]map[string]annotation.AutonegBackend{},
		NetworkEndpointGroups: map[string]string{},
		Zones:                 []string{},
	}
	named := false
	for _, t := range targets {
		if len(t.entries) == 0 {
			continue
		}
		named = true
		if b := st.tracked[t.key]; b == nil || (b.known && len(b.present) == 0 && len(t.desired) > 0) {
			continue
		}
		for port, e := range t.entries {
			p := strconv.Itoa(int(port))
			if s.BackendServices[p] == nil {
				s.BackendServices[p] = map[string]annotation.AutonegBackend{}
			}
			s.BackendServices[p][e.Name] = e
			n := want.NEGs[port]
			s.NetworkEndpointGroups[p] = n.Name
			for _, z := range n.Zones {
				if !slices.Contains(s.Zones, z) {
					s.Zones = append(s.Zones, z)
				}
			}
		}
	}
	if !named {
		return "", false
	}
	if cfg.SyncCapacityScaler {
		s.Sync = &annotation.AutonegSync{CapacityScaler: true}
	}
	return s.String(), true
}

// writeStatus patches the status annotation when its value changes.
func (r *Reconciler) writeStatus(ctx context.Context, key cache.ObjectName, want Want, cfg annotation.Autoneg, has bool, targets []*target) error {
	svc := want.Service
	if svc == nil {
		return nil
	}
	value, manage := r.statusValue(key, want, cfg, has, targets)
	cur, exists := svc.Annotations[annotation.AutonegStatusKey]
	r.mu.Lock()
	var last string
	if st := r.states[key]; st != nil {
		last = st.status
	}
	r.mu.Unlock()
	switch {
	case !manage:
		return nil
	case value == "" && !exists && last == "":
		return nil
	case value != "" && exists && cur == value:
		return nil
	}
	var v any
	if value != "" {
		v = value
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotation.AutonegStatusKey: v}}})
	if err != nil {
		return err
	}
	_, err = r.cfg.KubeClient.CoreV1().Services(key.Namespace).Patch(ctx, key.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		r.cfg.Events.Warn(key, want.Target, slot(ReasonStatusFailed, ""), ReasonStatusFailed,
			fmt.Sprintf("Failed to update annotation %s: %v", annotation.AutonegStatusKey, err))
		return fmt.Errorf("patching %s: %w", annotation.AutonegStatusKey, err)
	}
	r.cfg.Events.Clear(key, slot(ReasonStatusFailed, ""))
	r.mu.Lock()
	if st := r.states[key]; st != nil {
		st.status = value
	}
	r.mu.Unlock()
	klog.FromContext(ctx).V(2).Info("Updated autoneg status", "value", value)
	return nil
}
