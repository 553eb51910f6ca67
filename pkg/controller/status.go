package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/annotation"
)

// FieldManager is the field manager of the controller's writes to Services (neg-status).
const FieldManager = "neg-controller"

// negStatusField is how managedFields spell the neg-status annotation key.
var negStatusField = []byte(`"f:` + annotation.NEGStatusKey + `"`)

// OwnsNEGStatus reports whether a managedFields entry owns the neg-status annotation.
func OwnsNEGStatus(mf metav1.ManagedFieldsEntry) bool {
	return mf.FieldsV1 != nil && bytes.Contains(mf.FieldsV1.GetRawBytes(), negStatusField)
}

// statusWriters returns the field managers other than ours that own the neg-status annotation of
// svc (sorted): another controller — GKE's own NEG controller, typically — writes it, so two
// controllers would fight over the Service's NEGs. Only managedFields tell; an informer that
// trims them (see app.trimForCache, which keeps the entries owning neg-status) shows none.
func statusWriters(svc *corev1.Service) []string {
	var out []string
	for _, mf := range svc.ManagedFields {
		if mf.Manager == FieldManager || !OwnsNEGStatus(mf) {
			continue
		}
		if !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	slices.Sort(out)
	return out
}

// statusValue renders the neg-status annotation of s in GKE's format: every wanted port with
// its NEG name, and the zones where a NEG of ours for the Service actually exists. It returns
// "" when the Service wants no NEG (the annotation must be absent).
func (c *Controller) statusValue(s *serviceSync, tasks []*negTask) string {
	if len(s.want) == 0 {
		return ""
	}
	st := annotation.Status{NetworkEndpointGroups: map[string]string{}}
	for port, p := range s.want {
		st.NetworkEndpointGroups[strconv.Itoa(int(port))] = p.name
	}
	for _, t := range tasks {
		if t.remove {
			continue
		}
		e := c.index.get(t.ref)
		if e != nil && e.ours && e.desc == c.description(s.key, t.port.port) && !slices.Contains(st.Zones, t.ref.Zone) {
			st.Zones = append(st.Zones, t.ref.Zone)
		}
	}
	return st.String()
}

// writeStatus sets (or removes) the cloud.google.com/neg-status annotation of the Service with
// a merge patch, only when its value changes.
func (c *Controller) writeStatus(ctx context.Context, s *serviceSync, tasks []*negTask) error {
	if s.svc == nil {
		return nil
	}
	value := c.statusValue(s, tasks)
	cur, has := s.svc.Annotations[annotation.NEGStatusKey]
	if (value == "" && !has) || (has && cur == value) {
		return nil
	}
	var v any
	if value != "" {
		v = value
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotation.NEGStatusKey: v}}})
	if err != nil {
		return err
	}
	_, err = c.cfg.KubeClient.CoreV1().Services(s.key.Namespace).Patch(ctx, s.key.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		c.warn(s.key, s.target, slotStatus, ReasonStatusUpdateFailed,
			fmt.Sprintf("Failed to update annotation %s: %v", annotation.NEGStatusKey, err))
		return fmt.Errorf("patching %s: %w", annotation.NEGStatusKey, err)
	}
	c.warnings.clear(s.key, slotStatus)
	klog.FromContext(ctx).V(2).Info("Updated NEG status", "value", value)
	return nil
}
