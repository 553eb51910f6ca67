package controller

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSliceServiceIndex(t *testing.T) {
	slice := func(ns, svc string) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s", Labels: map[string]string{}}}
		if svc != "" {
			es.Labels[discoveryv1.LabelServiceName] = svc
		}
		return es
	}
	for _, tc := range []struct {
		obj  any
		want []string
	}{
		{slice("shop", "web"), []string{"shop/web"}},
		{slice("shop", ""), nil},
		{&corev1.Service{}, nil},
	} {
		if got, err := sliceServiceOf(tc.obj); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("sliceServiceOf(%v) = %v, %v; want %v", tc.obj, got, err, tc.want)
		}
	}
}
