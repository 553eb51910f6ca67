// Package objects builds the Kubernetes workload objects that the e2e suite, the rollout
// fixture (test/rollout), the benchmarks (test/bench) and the local cluster's own test create,
// so that what a test workload looks like is decided in one place: pods labelled app=<name>
// with one container "app" serving on a port named "http", and Services that select them and
// target that port by name. Callers adjust the returned objects for their case (annotations,
// probes, rollout strategy, readiness gates).
//
// The pods never run a container: test/podsim stands in for the kubelet and, with its Serve
// option, serves HTTP on every declared container port itself, so the image is never pulled.
//
// Like the rest of test/, this package must not be imported by production code of pkg/ or
// cmd/; their tests may use it.
package objects

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// Image is the container image of every test pod (never pulled; see the package doc).
	Image = "registry.k8s.io/pause:3.10"
	// AppLabel is the label whose value, the workload's name, Services select on.
	AppLabel = "app"
	// PortName names the pods' serving port; Services target it by this name.
	PortName = "http"
	// ContainerName is the name of the pods' one container.
	ContainerName = "app"
)

// PodSpec is the spec of every test pod: one container ContainerName running Image with
// containerPort named PortName, and a termination grace period of 1 s.
func PodSpec(containerPort int32) corev1.PodSpec {
	grace := int64(1)
	return corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name: ContainerName, Image: Image,
			Ports: []corev1.ContainerPort{{Name: PortName, ContainerPort: containerPort}},
		}},
	}
}

// Deployment returns a Deployment of replicas pods labelled app=name with PodSpec(containerPort)
// and the default rollout strategy.
func Deployment(ns, name string, replicas, containerPort int32) *appsv1.Deployment {
	labels := map[string]string{AppLabel: name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{AppLabel: name}},
				Spec:       PodSpec(containerPort),
			},
		},
	}
}

// Pod returns a bare pod (no controller) named name with labels and PodSpec(containerPort).
// For a generated name, pass "" and set GenerateName.
func Pod(ns, name string, labels map[string]string, containerPort int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       PodSpec(containerPort),
	}
}

// Service returns a Service named name selecting app=app with one port, named PortName, that
// forwards port to the pods' port named PortName. It has no annotations.
func Service(ns, name, app string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{AppLabel: app},
			Ports:    []corev1.ServicePort{{Name: PortName, Port: port, TargetPort: intstr.FromString(PortName)}},
		},
	}
}

// Ingress returns an Ingress in ns with the legacy class annotation kubernetes.io/ingress.class
// set to class (unless ""), spec.ingressClassName set to className, def as its default backend
// (unless nil) and one rule with a "/" Prefix path per backend of paths.
func Ingress(ns, name, class string, className *string, def *networkingv1.IngressServiceBackend,
	paths ...networkingv1.IngressServiceBackend) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{}}}
	if class != "" {
		ing.Annotations["kubernetes.io/ingress.class"] = class
	}
	ing.Spec.IngressClassName = className
	if def != nil {
		ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: def}
	}
	rule := networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}
	prefix := networkingv1.PathTypePrefix
	for _, p := range paths {
		rule.HTTP.Paths = append(rule.HTTP.Paths, networkingv1.HTTPIngressPath{Path: "/",
			PathType: &prefix, Backend: networkingv1.IngressBackend{Service: &p}})
	}
	ing.Spec.Rules = []networkingv1.IngressRule{{IngressRuleValue: rule}}
	return ing
}

// BackendPort is an Ingress backend naming port number p of Service svc.
func BackendPort(svc string, p int32) networkingv1.IngressServiceBackend {
	return networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: p}}
}

// BackendPortName is an Ingress backend naming the port called port of Service svc.
func BackendPortName(svc, port string) networkingv1.IngressServiceBackend {
	return networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: port}}
}
