package negstatus

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/neg-controller/neg-controller/pkg/annotation"
)

func TestValue(t *testing.T) {
	cases := []struct {
		name  string
		names map[int32]string
		zones []string
		want  string
	}{
		{"no NEG: absent", nil, []string{"zone-a"}, ""},
		{"no zone yet", map[int32]string{80: "neg-80"}, nil, `{"network_endpoint_groups":{"80":"neg-80"}}`},
		{"zones sorted, once each", map[int32]string{443: "neg-443", 80: "neg-80"}, []string{"zone-b", "zone-a", "zone-b"},
			`{"network_endpoint_groups":{"443":"neg-443","80":"neg-80"},"zones":["zone-a","zone-b"]}`},
	}
	for _, c := range cases {
		if got := Value(c.names, c.zones); got != c.want {
			t.Errorf("%s: Value = %s, want %s", c.name, got, c.want)
		}
	}
}

// managed is a managedFields entry of manager owning the annotations keys.
func managed(manager string, keys ...string) metav1.ManagedFieldsEntry {
	raw := `{"f:metadata":{"f:annotations":{`
	for i, k := range keys {
		if i > 0 {
			raw += ","
		}
		raw += `"f:` + k + `":{}`
	}
	return metav1.ManagedFieldsEntry{Manager: manager, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(raw + "}}}")}
}

func TestChanges(t *testing.T) {
	const v1, v2 = `{"network_endpoint_groups":{"80":"a"}}`, `{"network_endpoint_groups":{"80":"b"}}`
	neg, hybrid := annotation.NEGStatusKey, annotation.HybridNEGStatusKey
	svc := func(ann map[string]string, mf ...metav1.ManagedFieldsEntry) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Annotations: ann, ManagedFields: mf}}
	}
	cases := []struct {
		name      string
		svc       *corev1.Service
		statusKey string
		value     string
		want      map[string]any
	}{
		{"first write", svc(nil), neg, v1, map[string]any{neg: v1}},
		{"unchanged: nothing", svc(map[string]string{neg: v1}), neg, v1, map[string]any{}},
		{"changed", svc(map[string]string{neg: v1}), neg, v2, map[string]any{neg: v2}},
		{"no NEG any more: removed", svc(map[string]string{neg: v1}), neg, "", map[string]any{neg: nil}},
		{"annotation dropped: ours removed", svc(map[string]string{neg: v1}, managed(FieldManager, neg)), "", "", map[string]any{neg: nil}},
		{"switched annotations: the stale one removed", svc(map[string]string{neg: v1}), hybrid, v2,
			map[string]any{hybrid: v2, neg: nil}},
		{"another controller's status kept", svc(map[string]string{neg: v1}, managed("glbc", neg)), hybrid, v2,
			map[string]any{hybrid: v2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.want, Changes(c.svc, c.statusKey, c.value)); d != "" {
				t.Errorf("Changes (-want +got):\n%s", d)
			}
		})
	}
}

func TestWriters(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		managed(FieldManager, annotation.NEGStatusKey),
		managed("glbc", annotation.NEGStatusKey, annotation.HybridNEGStatusKey),
		managed("kubectl", "example.com/other"),
		managed("glbc", annotation.NEGStatusKey),
		managed("another", annotation.NEGStatusKey),
	}}}
	if d := cmp.Diff([]string{"another", "glbc"}, Writers(svc, annotation.NEGStatusKey)); d != "" {
		t.Errorf("Writers of neg-status (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"glbc"}, Writers(svc, annotation.HybridNEGStatusKey)); d != "" {
		t.Errorf("Writers of hybrid-neg-status (-want +got):\n%s", d)
	}
	if got := OwnedKeys(metav1.ManagedFieldsEntry{Manager: "x"}); got != nil {
		t.Errorf("OwnedKeys without fields = %v", got)
	}
}
