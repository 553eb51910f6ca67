package podsim

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// noNodeRetry is how often an unbound pod that fits no node is looked at again (node events also
// trigger a look).
const noNodeRetry = 5 * time.Second

// sync moves one pod a step towards what a kubelet and scheduler would make of it. It returns
// how long to wait before looking at the pod again (0: only on the next event).
func (s *sim) sync(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	pod, err := s.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.forget(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var node *corev1.Node
	if pod.Spec.NodeName != "" {
		node, err = s.nodes.Get(pod.Spec.NodeName)
		if err != nil && !apierrors.IsNotFound(err) {
			return 0, err
		}
		if node != nil && !isManaged(node) {
			return 0, nil // someone else's node
		}
	}
	switch {
	case pod.DeletionTimestamp != nil:
		return s.finishDeletion(ctx, key, pod)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		s.forget(key)
		return 0, nil
	case pod.Spec.NodeName == "":
		if !wantsPodsim(pod) {
			return 0, nil
		}
		return s.bind(ctx, key, pod)
	case node == nil:
		return 0, nil // bound to a node that does not exist (yet); its creation re-queues the pod
	}
	return s.syncStatus(ctx, key, pod, node)
}

// bind picks a node for the pod and binds it there. The choice and its effect on the load are
// made under s.mu, so concurrent binds spread.
func (s *sim) bind(ctx context.Context, key string, pod *corev1.Pod) (time.Duration, error) {
	nodes, err := s.nodes.List(labels.Everything())
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	target := pickNode(pod, nodes, s.load())
	if target != "" {
		s.state(key, string(pod.UID)).node = target
	}
	s.mu.Unlock()
	logger := klog.LoggerWithValues(s.logger, "pod", klog.KObj(pod))
	if target == "" {
		logger.V(2).Info("No node fits the pod; waiting for nodes")
		return noNodeRetry, nil
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: target},
	}
	err = s.client.CoreV1().Pods(pod.Namespace).Bind(ctx, binding, metav1.CreateOptions{})
	switch {
	case err == nil:
		logger.V(2).Info("Bound pod", "node", target)
		return 0, nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Deleted, replaced or bound by someone else meanwhile: the next event tells.
		s.mu.Lock()
		if st := s.states[key]; st != nil && st.uid == string(pod.UID) {
			st.node = ""
		}
		s.mu.Unlock()
		return 0, nil
	default:
		s.mu.Lock()
		if st := s.states[key]; st != nil && st.uid == string(pod.UID) {
			st.node = ""
		}
		s.mu.Unlock()
		return 0, fmt.Errorf("binding to %s: %w", target, err)
	}
}

// finishDeletion completes a graceful deletion, as the kubelet does once the containers stopped:
// after min(grace period, MaxGrace) from when podsim first saw the deletion, it deletes the pod
// with grace period 0 (preconditioned on its UID). Until then the status is left as it is.
func (s *sim) finishDeletion(ctx context.Context, key string, pod *corev1.Pod) (time.Duration, error) {
	now := s.now()
	var rt *podRuntime
	s.mu.Lock()
	st := s.state(key, string(pod.UID))
	if st.deletingSince.IsZero() {
		st.deletingSince = now
	}
	since := st.deletingSince
	if s.cfg.Serve {
		rt = s.runtimeOf(st, key, pod.Name)
	}
	s.mu.Unlock()

	wait := time.Duration(0)
	if pod.DeletionGracePeriodSeconds != nil {
		wait = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	wait = max(min(wait, s.cfg.MaxGrace), 0)
	remaining := since.Add(wait).Sub(now)
	if rt != nil {
		// Serving: the pod goes when its containers stopped (preStop, then shutdown), at the
		// latest at the grace deadline; the runtime re-queues the pod then.
		if !rt.stopped(pod, max(remaining, 0)) {
			return max(remaining, 0) + time.Second, nil
		}
	} else if remaining > 0 {
		return remaining, nil
	}
	zero := int64(0)
	err := s.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, fmt.Errorf("finishing deletion: %w", err)
	}
	s.logger.V(2).Info("Deleted terminating pod", "pod", klog.KObj(pod), "after", now.Sub(since).Round(time.Millisecond))
	return 0, nil
}

// syncStatus gives a pod bound to a podsim node an IP and writes the kubelet's view of it
// through the status subresource: Running, ContainersReady after ReadyDelay, Ready when the
// containers and all readiness gates are.
func (s *sim) syncStatus(ctx context.Context, key string, pod *corev1.Pod, node *corev1.Node) (time.Duration, error) {
	logger := klog.LoggerWithValues(s.logger, "pod", klog.KObj(pod), "node", node.Name)
	hostIP := internalIP(node)
	if hostIP == "" || node.Spec.PodCIDR == "" {
		logger.V(2).Info("Node has no InternalIP or pod CIDR yet")
		return 0, nil // the node's update re-queues the pod
	}
	now := s.now()
	s.mu.Lock()
	st := s.state(key, string(pod.UID))
	st.node = node.Name
	podIP := hostIP
	if !pod.Spec.HostNetwork {
		want, _ := netip.ParseAddr(pod.Status.PodIP) // keep an IP written before a restart
		ip, err := s.ipam.allocate(key, string(pod.UID), node.Name, node.Spec.PodCIDR, want)
		if err != nil {
			s.mu.Unlock()
			logger.Error(err, "Cannot allocate a pod IP")
			return noNodeRetry, nil
		}
		podIP = ip.String()
	}
	if st.startedAt.IsZero() {
		st.startedAt = now
		if pod.Status.StartTime != nil {
			st.startedAt = pod.Status.StartTime.Time
		}
	}
	started := st.startedAt
	hostIPv6, podIPv6 := nodeIPv6(node, podIP, pod.Spec.HostNetwork)
	var rt *podRuntime
	if s.cfg.Serve && !pod.Spec.HostNetwork {
		rt = s.runtimeOf(st, key, pod.Name)
	}
	s.mu.Unlock()
	readyAt := started.Add(s.cfg.ReadyDelay)
	containersReady, probed := !now.Before(readyAt), false
	if rt != nil {
		rt.ensure(pod, podIP, started)
		var ok bool
		if probed, ok = rt.readiness(); probed {
			containersReady = ok // httpGet readiness probes decide, not ReadyDelay
		}
	}

	in := statusInput{
		hostIP:          hostIP,
		podIP:           podIP,
		hostIPv6:        hostIPv6,
		podIPv6:         podIPv6,
		startTime:       metav1.NewTime(started),
		containersReady: containersReady,
		now:             metav1.NewTime(now),
	}
	first := true
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := pod
		if !first {
			fresh, err := s.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if fresh.UID != pod.UID || fresh.DeletionTimestamp != nil {
				return nil // replaced or deleting: the next event tells
			}
			cur = fresh
		}
		first = false
		want := desiredStatus(cur, in)
		if equality.Semantic.DeepEqual(cur.Status, want) {
			return nil
		}
		upd := cur.DeepCopy()
		upd.Status = want
		if _, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return err
		}
		logger.V(3).Info("Updated pod status", "podIP", podIP, "ready", findCondition(want.Conditions, corev1.PodReady).Status)
		return nil
	})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("updating status: %w", err)
	}
	if !in.containersReady && !probed {
		return readyAt.Sub(now), nil
	}
	return 0, nil
}

// internalIP is the node's (first) IPv4 InternalIP.
func internalIP(node *corev1.Node) string {
	for _, a := range node.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); a.Type == corev1.NodeInternalIP && err == nil && ip.Is4() {
			return a.Address
		}
	}
	return ""
}

// nodeIPv6 returns, for a dual-stack node (an IPv6 pod CIDR and an IPv6 InternalIP), its IPv6
// InternalIP and the IPv6 address of the pod with IPv4 address podIP (the host's for a
// hostNetwork pod); "", "" for a single-stack node.
func nodeIPv6(node *corev1.Node, podIP string, hostNetwork bool) (host, pod string) {
	var cidr netip.Prefix
	for _, c := range node.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is6() {
			cidr = p.Masked()
		}
	}
	for _, a := range node.Status.Addresses {
		if ip, err := netip.ParseAddr(a.Address); a.Type == corev1.NodeInternalIP && err == nil && ip.Is6() && host == "" {
			host = a.Address
		}
	}
	ip, err := netip.ParseAddr(podIP)
	switch {
	case !cidr.IsValid() || host == "" || err != nil || !ip.Is4():
		return "", ""
	case hostNetwork:
		return host, host
	}
	return host, podIPv6(cidr, ip).String()
}
