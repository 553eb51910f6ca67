package app

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/neg-controller/neg-controller/pkg/endpoints"
	negready "github.com/neg-controller/neg-controller/pkg/readiness"
	"github.com/neg-controller/neg-controller/pkg/zones"
)

// TestTrimForCachePod: a pod waiting on the readiness gate keeps the fields the reflector reads.
func TestTrimForCachePod(t *testing.T) {
	now := metav1.Now()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "7", CreationTimestamp: now,
			Labels: map[string]string{"app": "a"}, Annotations: map[string]string{"big": "x"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.PodSpec{
			NodeName:       "n1",
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "cloud.google.com/load-balancer-neg-ready"}},
			Volumes:        []corev1.Volume{{Name: "v"}},
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers: []corev1.Container{{
				Name: "app", Image: "img", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}},
			}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			PodIP:             "10.0.0.1",
			PodIPs:            []corev1.PodIP{{IP: "10.0.0.1"}},
			HostIP:            "10.128.0.2",
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true}},
		},
	}
	out, err := trimForCache(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	want := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "7", CreationTimestamp: now,
			Labels: map[string]string{"app": "a"},
		},
		Spec: corev1.PodSpec{
			NodeName:       "n1",
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "cloud.google.com/load-balancer-neg-ready"}},
			Containers:     []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}},
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			PodIP:      "10.0.0.1",
			PodIPs:     []corev1.PodIP{{IP: "10.0.0.1"}},
		},
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("trimmed pod:\n got %+v\nwant %+v", got, want)
	}
	// The reflector's informer transforms what it already transformed (watch-list sync).
	if again, _ := trimForCache(got); !equality.Semantic.DeepEqual(again, want) {
		t.Errorf("trimmed twice:\n got %+v\nwant %+v", again, want)
	}
}

// TestTrimForCachePodMetadataOnly: a pod the readiness reflector has nothing to do for is cached
// as its namespace, name and resource version.
func TestTrimForCachePodMetadataOnly(t *testing.T) {
	now := metav1.Now()
	gate := []corev1.PodReadinessGate{{ConditionType: negready.GateType}}
	for name, mutate := range map[string]func(*corev1.Pod){
		"no gate": func(p *corev1.Pod) { p.Spec.ReadinessGates = nil },
		"other gate": func(p *corev1.Pod) {
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/ready"}}
		},
		"terminating": func(p *corev1.Pod) { p.DeletionTimestamp = &now },
		"gate True": func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: negready.GateType, Status: corev1.ConditionTrue})
		},
	} {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "7", CreationTimestamp: now,
					Labels: map[string]string{"app": "a"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
				Spec: corev1.PodSpec{NodeName: "n1", ReadinessGates: gate,
					Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1",
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
			}
			mutate(pod)
			want := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", ResourceVersion: "7"}}
			got, err := trimForCache(pod)
			if err != nil || !equality.Semantic.DeepEqual(got, want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, want)
			}
			if again, _ := trimForCache(got); !equality.Semantic.DeepEqual(again, want) {
				t.Errorf("trimmed twice: got %+v, want %+v", again, want)
			}
			if key, err := cache.MetaNamespaceKeyFunc(got); key != "ns/p" || err != nil {
				t.Errorf("cache key = %q, %v; want ns/p", key, err)
			}
		})
	}
}

func TestTrimForCacheOthers(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n", Labels: map[string]string{corev1.LabelTopologyZone: "z"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec:   corev1.NodeSpec{ProviderID: "gce://p/z/n"},
		Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"img"}}}, Addresses: []corev1.NodeAddress{{Address: "10.1.1.1"}}},
	}
	out, _ := trimForCache(node)
	n := out.(*corev1.Node)
	if n.ManagedFields != nil || n.Status.Images != nil {
		t.Errorf("node kept managed fields or images: %+v", n)
	}
	if n.Labels[corev1.LabelTopologyZone] != "z" || n.Spec.ProviderID == "" || len(n.Status.Addresses) != 1 {
		t.Errorf("node lost fields the controller reads: %+v", n)
	}

	owning := `{"f:metadata":{"f:annotations":{"f:cloud.google.com/neg":{},"f:cloud.google.com/neg-status":{}},"f:labels":{}},"f:spec":{}}`
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Annotations: map[string]string{"cloud.google.com/neg": "{}"},
		ManagedFields: []metav1.ManagedFieldsEntry{
			{Manager: "kubectl", FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)},
			{Manager: "glbc", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(owning)},
		}}}
	out, _ = trimForCache(svc)
	s := out.(*corev1.Service)
	wantMF := []metav1.ManagedFieldsEntry{{Manager: "glbc", Operation: metav1.ManagedFieldsOperationUpdate, FieldsType: "FieldsV1",
		FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{"f:cloud.google.com/neg-status":{}}}}`)}}
	if !equality.Semantic.DeepEqual(s.ManagedFields, wantMF) || s.Annotations["cloud.google.com/neg"] != "{}" {
		t.Errorf("service: only the managers owning neg-status stay (with that field only), annotations stay: %+v", s.ObjectMeta)
	}

	tomb := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: &corev1.Pod{}}
	if out, err := trimForCache(tomb); err != nil || out != any(tomb) {
		t.Errorf("tombstone: got %v, %v; want it unchanged", out, err)
	}
}

// TestTrimForCacheEndpointSlice: a slice keeps what the controller reads, and the endpoints
// desired from it are the same as from the whole slice.
func TestTrimForCacheEndpointSlice(t *testing.T) {
	full := func() *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "ns", GenerateName: "web-", ResourceVersion: "9",
				Labels:          map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
				Annotations:     map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "2026-12-06T00:00:00Z"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "Service", Name: "web", UID: "s1"}},
				ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}, Hostname: ptr.To("web-1"), NodeName: ptr.To("n1"), Zone: ptr.To("z1"),
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-1", UID: "p1", ResourceVersion: "5", APIVersion: "v1"},
					Hints:      &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: "z1"}}}, DeprecatedTopology: map[string]string{"k": "v"}},
				{Addresses: []string{"10.0.0.2"}, NodeName: ptr.To("n1"),
					Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false), Terminating: ptr.To(true)},
					TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "web-2", UID: "p2"}},
			},
		}
	}
	out, err := trimForCache(full())
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*discoveryv1.EndpointSlice)
	want := full()
	want.Annotations, want.OwnerReferences, want.ManagedFields = nil, nil, nil
	want.Endpoints[0] = discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1"),
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: "web-1"}}
	want.Endpoints[1].TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: "web-2"}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("trimmed slice:\n got %+v\nwant %+v", got, want)
	}
	nodes := map[string]zones.Node{"n1": {Name: "n1", Zone: "z1", Instance: "n1", Candidate: true}}
	before := endpoints.Desired("http", []*discoveryv1.EndpointSlice{full()}, nodes, []string{"z1"}, endpoints.IPv4)
	after := endpoints.Desired("http", []*discoveryv1.EndpointSlice{got}, nodes, []string{"z1"}, endpoints.IPv4)
	if !reflect.DeepEqual(before, after) || before.ByZone["z1"].Len() != 1 {
		t.Errorf("desired from the trimmed slice = %+v, from the whole slice %+v", after, before)
	}
}
