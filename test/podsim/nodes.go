package podsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// ManagedLabel marks the Nodes podsim created; podsim binds pods only to these.
const ManagedLabel = "podsim.neg-controller.test/managed"

func isManaged(node *corev1.Node) bool { return node.Labels[ManagedLabel] == "true" }

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// region is the zone's region: us-central1-a → us-central1.
func region(zone string) string {
	if i := strings.LastIndexByte(zone, '-'); i > 0 {
		return zone[:i]
	}
	return zone
}

// AddNode registers n: with svc non-nil and n not External, first as a Compute Engine instance
// in project and the node's zone (networkIP n.IP, alias range n.PodCIDR; dual-stack: stack type
// IPV4_IPV6 with internal IPv6 range n.IPv6/96, plus alias IPv6 range n.PodCIDRv6 if that is not
// inside it); then as a Node labelled with its zone, region and hostname, providerID
// gce://project/zone/name (none when External), spec.podCIDR(s) n.PodCIDR (and n.PodCIDRv6), and
// a Ready status with its InternalIP(s) and Hostname addresses. It is idempotent: an existing
// instance is kept and an existing Node is updated.
func AddNode(ctx context.Context, client kubernetes.Interface, svc *compute.Service, project string, n NodeSpec) error {
	if err := n.validate(); err != nil {
		return err
	}
	if svc != nil && !n.External {
		if err := insertInstance(ctx, svc, project, n); err != nil {
			return fmt.Errorf("node %s: GCE instance: %w", n.Name, err)
		}
	}
	want := nodeObject(project, n)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		upd := cur.DeepCopy()
		if upd.Labels == nil {
			upd.Labels = map[string]string{}
		}
		for k, v := range want.Labels {
			upd.Labels[k] = v
		}
		if upd.Spec.ProviderID == "" { // immutable once set
			upd.Spec.ProviderID = want.Spec.ProviderID
		}
		if upd.Spec.PodCIDR == "" { // immutable once set
			upd.Spec.PodCIDR, upd.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
		}
		_, err = client.CoreV1().Nodes().Update(ctx, upd, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := updateNodeStatus(ctx, client, n.Name, func(st *corev1.NodeStatus) {
		st.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}}
		if n.IPv6 != "" {
			st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: n.IPv6})
		}
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name})
		st.Capacity = want.Status.Capacity
		st.Allocatable = want.Status.Allocatable
		st.NodeInfo = want.Status.NodeInfo
		now := metav1.Now()
		setNodeCondition(st, corev1.NodeReady, corev1.ConditionTrue, now)
		for _, t := range []corev1.NodeConditionType{corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
			setNodeCondition(st, t, corev1.ConditionFalse, now)
		}
	}); err != nil {
		return err
	}
	klog.FromContext(ctx).V(1).Info("Registered node", "node", n.Name, "zone", n.Zone, "podCIDR", n.PodCIDR, "ip", n.IP)
	return nil
}

// RemoveNode undoes AddNode: it force-deletes the pods bound to the node (as the pod garbage
// collector would for a vanished node, so ReplicaSets replace them), deletes the Node and, with
// svc non-nil and n not External, the Compute Engine instance. Things already gone are not
// errors.
func RemoveNode(ctx context.Context, client kubernetes.Interface, svc *compute.Service, project string, n NodeSpec) error {
	pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name})
	if err != nil {
		return fmt.Errorf("node %s: listing pods: %w", n.Name, err)
	}
	zero := int64(0)
	for _, p := range pods.Items {
		err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s: deleting pod %s/%s: %w", n.Name, p.Namespace, p.Name, err)
		}
	}
	if err := client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if svc != nil && !n.External {
		op, err := svc.Instances.Delete(project, n.Zone, n.Name).Context(ctx).Do()
		if isHTTP(err, http.StatusNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("node %s: deleting GCE instance: %w", n.Name, err)
		}
		return waitZoneOp(ctx, svc, project, n.Zone, op)
	}
	return nil
}

// SetNodeReady sets the node's Ready condition, e.g. to test how a controller treats NotReady
// nodes. podsim binds new pods only to Ready nodes; pods already bound are left alone.
func SetNodeReady(ctx context.Context, client kubernetes.Interface, name string, ready bool) error {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return updateNodeStatus(ctx, client, name, func(st *corev1.NodeStatus) {
		setNodeCondition(st, corev1.NodeReady, status, metav1.Now())
	})
}

// updateNodeStatus applies mutate to the node's status through the status subresource,
// retrying on conflicts.
func updateNodeStatus(ctx context.Context, client kubernetes.Interface, name string, mutate func(*corev1.NodeStatus)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		node = node.DeepCopy()
		mutate(&node.Status)
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("node %s: updating status: %w", name, err)
	}
	return nil
}

func setNodeCondition(st *corev1.NodeStatus, t corev1.NodeConditionType, status corev1.ConditionStatus, now metav1.Time) {
	reason, msg := nodeConditionReason(t, status)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, msg, now
		return
	}
	st.Conditions = append(st.Conditions, corev1.NodeCondition{
		Type: t, Status: status, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now,
	})
}

func nodeConditionReason(t corev1.NodeConditionType, status corev1.ConditionStatus) (string, string) {
	switch {
	case t == corev1.NodeReady && status == corev1.ConditionTrue:
		return "KubeletReady", "podsim is posting ready status"
	case t == corev1.NodeReady:
		return "KubeletNotReady", "podsim marked the node not ready"
	case t == corev1.NodeMemoryPressure:
		return "KubeletHasSufficientMemory", "podsim reports no memory pressure"
	case t == corev1.NodeDiskPressure:
		return "KubeletHasNoDiskPressure", "podsim reports no disk pressure"
	default:
		return "KubeletHasSufficientPID", "podsim reports no PID pressure"
	}
}

// nodeObject is the Node AddNode creates, with the status it then writes.
func nodeObject(project string, n NodeSpec) *corev1.Node {
	providerID, nodeRegion := fmt.Sprintf("gce://%s/%s/%s", project, n.Zone, n.Name), region(n.Zone)
	if n.External {
		providerID, nodeRegion = "", strings.TrimRight(n.Zone, "abcdefghijklmnopqrstuvwxyz")
	}
	podCIDRs := []string{n.PodCIDR}
	if n.PodCIDRv6 != "" {
		podCIDRs = append(podCIDRs, n.PodCIDRv6)
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Labels: map[string]string{
				corev1.LabelTopologyZone:   n.Zone,
				corev1.LabelTopologyRegion: nodeRegion,
				corev1.LabelHostname:       n.Name,
				corev1.LabelOSStable:       "linux",
				corev1.LabelArchStable:     "amd64",
				ManagedLabel:               "true",
			},
		},
		Spec: corev1.NodeSpec{
			ProviderID: providerID,
			PodCIDR:    n.PodCIDR,
			PodCIDRs:   podCIDRs,
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res,
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion: "v0.0.0-podsim", OperatingSystem: "linux", Architecture: "amd64", OSImage: "podsim",
			},
		},
	}
}

// insertInstance creates the node's Compute Engine instance; one that already exists is fine.
func insertInstance(ctx context.Context, svc *compute.Service, project string, n NodeSpec) error {
	base := "https://www.googleapis.com/compute/v1/projects/" + project
	nic := &compute.NetworkInterface{
		Name:          "nic0",
		Network:       base + "/global/networks/default",
		Subnetwork:    fmt.Sprintf("%s/regions/%s/subnetworks/default", base, region(n.Zone)),
		NetworkIP:     n.IP,
		AliasIpRanges: []*compute.AliasIpRange{{IpCidrRange: n.PodCIDR, SubnetworkRangeName: "pods"}},
	}
	if n.IPv6 != "" {
		nic.StackType, nic.Ipv6Address, nic.InternalIpv6PrefixLength = "IPV4_IPV6", n.IPv6, 96
		if pods := netip.MustParsePrefix(n.PodCIDRv6).Masked(); !n.nodeIPv6Range().Contains(pods.Addr()) || pods.Bits() < 96 {
			nic.AliasIpv6Ranges = []*compute.AliasIpRange{{IpCidrRange: pods.String()}}
		}
	}
	inst := &compute.Instance{
		Name:              n.Name,
		MachineType:       fmt.Sprintf("zones/%s/machineTypes/e2-standard-4", n.Zone),
		NetworkInterfaces: []*compute.NetworkInterface{nic},
		Labels:            map[string]string{"podsim": "true"},
	}
	op, err := svc.Instances.Insert(project, n.Zone, inst).Context(ctx).Do()
	if isHTTP(err, http.StatusConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	return waitZoneOp(ctx, svc, project, n.Zone, op)
}

// waitZoneOp waits for a zonal operation to finish and returns its error, if any.
func waitZoneOp(ctx context.Context, svc *compute.Service, project, zone string, op *compute.Operation) error {
	for op.Status != "DONE" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		var err error
		if op, err = svc.ZoneOperations.Wait(project, zone, op.Name).Context(ctx).Do(); err != nil {
			return fmt.Errorf("waiting for operation: %w", err)
		}
	}
	if op.Error != nil && len(op.Error.Errors) > 0 {
		e := op.Error.Errors[0]
		if e.Code == "RESOURCE_ALREADY_EXISTS" || e.Code == "RESOURCE_NOT_FOUND" {
			return nil
		}
		return fmt.Errorf("operation %s: %s: %s", op.Name, e.Code, e.Message)
	}
	return nil
}

func isHTTP(err error, code int) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == code
}
