package wanted

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func svcAt(ns, name string, created time.Time) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(created)}}
}

func TestNameWinner(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := svcAt("ns1", "a", t0)
	b := svcAt("ns1", "b", t0.Add(time.Minute))
	sameTime := svcAt("ns0", "z", t0)
	cases := []struct {
		name      string
		svc       *corev1.Service
		claimants []*corev1.Service
		want      *corev1.Service
	}{
		{"alone", a, []*corev1.Service{a}, nil},
		{"older wins", b, []*corev1.Service{a, b}, a},
		{"older keeps it", a, []*corev1.Service{a, b}, nil},
		{"tie broken by namespace/name", a, []*corev1.Service{a, sameTime}, sameTime},
		{"tie winner keeps it", sameTime, []*corev1.Service{a, sameTime, b}, nil},
		{"svc not listed itself", b, []*corev1.Service{a}, a},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := NameWinner(c.svc, c.claimants); got != c.want {
				t.Errorf("NameWinner = %v, want %v", got, c.want)
			}
		})
	}
}
