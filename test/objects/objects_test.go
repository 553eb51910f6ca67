package objects

import (
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

// TestServiceSelectsDeployment: a Service built for a Deployment of the same app selects its
// pods and targets a port they declare.
func TestServiceSelectsDeployment(t *testing.T) {
	d := Deployment("ns", "web", 3, 8080)
	svc := Service("ns", "web", "web", 80)
	tmpl := d.Spec.Template
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("the Deployment's selector %v does not match its template's labels %v", d.Spec.Selector.MatchLabels, tmpl.Labels)
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(tmpl.Labels)) {
		t.Errorf("the Service's selector %v does not match the pods' labels %v", svc.Spec.Selector, tmpl.Labels)
	}
	target := svc.Spec.Ports[0].TargetPort.StrVal
	found := false
	for _, p := range tmpl.Spec.Containers[0].Ports {
		found = found || (p.Name == target && p.ContainerPort == 8080)
	}
	if !found || *d.Spec.Replicas != 3 || svc.Spec.Ports[0].Port != 80 {
		t.Errorf("Service port %+v, pod ports %+v, replicas %d", svc.Spec.Ports[0], tmpl.Spec.Containers[0].Ports, *d.Spec.Replicas)
	}
	// The builders return fresh objects: changing one changes no other.
	d.Spec.Template.Labels["x"] = "y"
	d.Spec.Template.Spec.Containers[0].Name = "changed"
	if d2 := Deployment("ns", "web", 3, 8080); len(d2.Spec.Template.Labels) != 1 || d2.Spec.Template.Spec.Containers[0].Name != ContainerName {
		t.Errorf("builders share state: %+v", d2.Spec.Template)
	}
	if p := Pod("ns", "p", map[string]string{AppLabel: "web"}, 8080); p.Spec.Containers[0].Ports[0].Name != PortName || *p.Spec.TerminationGracePeriodSeconds != 1 {
		t.Errorf("pod %+v", p.Spec)
	}
}
