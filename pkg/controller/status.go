package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
)

// FieldManager is the field manager of the controller's writes to Services (neg-status).
const FieldManager = "neg-controller"

// statusKeys are the status annotations the controller writes: neg-status for
// cloud.google.com/neg, hybrid-neg-status for solutions.cloud.google.com/hybrid-neg.
var statusKeys = []string{annotation.NEGStatusKey, annotation.HybridNEGStatusKey}

// OwnedStatusKeys returns the status annotations (statusKeys) a managedFields entry owns.
func OwnedStatusKeys(mf metav1.ManagedFieldsEntry) []string {
	if mf.FieldsV1 == nil {
		return nil
	}
	var out []string
	for _, k := range statusKeys {
		if bytes.Contains(mf.FieldsV1.GetRawBytes(), []byte(`"f:`+k+`"`)) {
			out = append(out, k)
		}
	}
	return out
}

// OwnsNEGStatus reports whether a managedFields entry owns neg-status or hybrid-neg-status.
func OwnsNEGStatus(mf metav1.ManagedFieldsEntry) bool { return len(OwnedStatusKeys(mf)) > 0 }

// statusWriters returns the field managers other than ours that own the status annotation key
// of svc (sorted): another controller — GKE's own NEG controller, typically —
// writes it, so two controllers would fight over the Service's NEGs. Only managedFields tell;
// an informer that trims them (see app.trimForCache, which keeps the entries owning a status
// annotation) shows none.
func statusWriters(svc *corev1.Service, key string) []string {
	var out []string
	for _, mf := range svc.ManagedFields {
		if mf.Manager == FieldManager || !slices.Contains(OwnedStatusKeys(mf), key) {
			continue
		}
		if !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	slices.Sort(out)
	return out
}

// statusValue renders the neg-status (or hybrid-neg-status) annotation of s in GKE's format:
// every wanted port with its NEG name, and the zones where a NEG of ours for the Service
// actually exists. It returns "" when the Service wants no NEG (the annotation must be absent).
func (c *Controller) statusValue(s *serviceSync, tasks []*negTask) string {
	if len(s.want) == 0 {
		return ""
	}
	st := annotation.Status{NetworkEndpointGroups: map[string]string{}}
	for port, p := range s.want {
		st.NetworkEndpointGroups[strconv.Itoa(int(port))] = p.Name
	}
	for _, t := range tasks {
		if t.remove {
			continue
		}
		if c.serves(s, t, c.index.Get(t.ref)) && !slices.Contains(st.Zones, t.ref.Zone) {
			st.Zones = append(st.Zones, t.ref.Zone)
		}
	}
	return st.String()
}

// writeStatus sets (or removes) the status annotation of the Service's source with a merge
// patch, only when its value changes. The other status annotation is removed in the same patch
// when present and written by no other controller: it is stale (the Service switched
// annotations, or dropped its annotation).
func (c *Controller) writeStatus(ctx context.Context, s *serviceSync, tasks []*negTask) error {
	if s.svc == nil {
		return nil
	}
	changes := c.statusChanges(s, tasks)
	if len(changes) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": changes}})
	if err != nil {
		return err
	}
	_, err = c.cfg.KubeClient.CoreV1().Services(s.key.Namespace).Patch(ctx, s.key.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	keys := slices.Sorted(maps.Keys(changes))
	if err != nil {
		c.warn(s.key, s.target, slotStatus, ReasonStatusUpdateFailed,
			fmt.Sprintf("Failed to update annotation %s: %v", strings.Join(keys, ", "), err))
		return fmt.Errorf("patching %s: %w", strings.Join(keys, ", "), err)
	}
	c.warnings.Clear(s.key, slotStatus)
	klog.FromContext(ctx).V(2).Info("Updated NEG status", "annotations", keys, "value", changes[s.src.StatusKey])
	return nil
}

// statusChanges returns the status annotations writeStatus must set (to a string) or remove
// (nil): the source's status annotation when its value changes, and any other status annotation
// present that no other field manager writes.
func (c *Controller) statusChanges(s *serviceSync, tasks []*negTask) map[string]any {
	value := ""
	if s.src.StatusKey != "" {
		value = c.statusValue(s, tasks)
	}
	out := map[string]any{}
	for _, k := range statusKeys {
		cur, has := s.svc.Annotations[k]
		switch {
		case k == s.src.StatusKey && value != "":
			if cur != value {
				out[k] = value
			}
		case has && (k == s.src.StatusKey || len(statusWriters(s.svc, k)) == 0):
			out[k] = nil
		}
	}
	return out
}
