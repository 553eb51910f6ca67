// Package negstatus is the status annotation a Service's NEG controller writes: neg-status for
// cloud.google.com/neg, hybrid-neg-status for solutions.cloud.google.com/hybrid-neg, in GKE's
// format (annotation.Status). It renders the value (Value), decides which status annotations
// a sync must set or remove (Changes), tells who else writes them from managedFields
// (OwnedKeys, Writers: a second NEG controller on the cluster, GKE's typically) and writes them
// with a merge patch under FieldManager (Patch).
package negstatus

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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/neg-controller/neg-controller/pkg/annotation"
)

// FieldManager is the field manager of the controller's writes to Services (the status
// annotations, and the hybrid controller's finalizer it removes).
const FieldManager = "neg-controller"

// Keys are the status annotations the controller writes.
var Keys = []string{annotation.NEGStatusKey, annotation.HybridNEGStatusKey}

// OwnedKeys returns the status annotations (Keys) a managedFields entry owns.
func OwnedKeys(mf metav1.ManagedFieldsEntry) []string {
	if mf.FieldsV1 == nil {
		return nil
	}
	var out []string
	for _, k := range Keys {
		if bytes.Contains(mf.FieldsV1.GetRawBytes(), []byte(`"f:`+k+`"`)) {
			out = append(out, k)
		}
	}
	return out
}

// Writers returns the field managers other than ours that own the status annotation key of
// svc (sorted): another controller — GKE's own NEG controller, typically — writes it, so two
// controllers would fight over the Service's NEGs. Only managedFields tell; an informer that
// trims them (see app.trimForCache, which keeps the entries owning a status annotation) shows
// none.
func Writers(svc *corev1.Service, key string) []string {
	var out []string
	for _, mf := range svc.ManagedFields {
		if mf.Manager == FieldManager || !slices.Contains(OwnedKeys(mf), key) {
			continue
		}
		if !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	slices.Sort(out)
	return out
}

// Value renders a status annotation: every wanted port with its NEG name (names), and zones,
// where a NEG of ours for the Service exists. It is "" when the Service wants no NEG (the
// annotation must be absent).
func Value(names map[int32]string, zones []string) string {
	if len(names) == 0 {
		return ""
	}
	st := annotation.Status{NetworkEndpointGroups: map[string]string{}}
	for port, name := range names {
		st.NetworkEndpointGroups[strconv.Itoa(int(port))] = name
	}
	for _, z := range zones {
		if !slices.Contains(st.Zones, z) {
			st.Zones = append(st.Zones, z)
		}
	}
	return st.String()
}

// Changes returns the status annotations of svc to set (to a string) or remove (nil) so that
// statusKey (the annotation of the Service's source; "" when it has none) holds value ("":
// absent): statusKey when its value changes, and any other status annotation present that no
// other field manager writes — stale, as the Service switched annotations or dropped its
// annotation.
func Changes(svc *corev1.Service, statusKey, value string) map[string]any {
	out := map[string]any{}
	for _, k := range Keys {
		cur, has := svc.Annotations[k]
		switch {
		case k == statusKey && value != "":
			if cur != value {
				out[k] = value
			}
		case has && (k == statusKey || len(Writers(svc, k)) == 0):
			out[k] = nil
		}
	}
	return out
}

// Patch applies changes (from Changes) to the Service key with a merge patch under
// FieldManager. A Service that is gone is not an error.
func Patch(ctx context.Context, client kubernetes.Interface, key cache.ObjectName, changes map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": changes}})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Services(key.Namespace).Patch(ctx, key.Name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("patching %s: %w", strings.Join(slices.Sorted(maps.Keys(changes)), ", "), err)
	}
	return nil
}
