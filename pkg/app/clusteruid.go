package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Where GKE keeps the cluster naming UID.
const (
	UIDConfigMapNamespace = "kube-system"
	UIDConfigMapName      = "ingress-uid"
	UIDConfigMapKey       = "uid"
)

// NamingUID returns the cluster naming UID: flagValue if set, else the "uid" key of ConfigMap
// kube-system/ingress-uid, which is created (or completed) with 16 random lowercase hex
// characters when missing, as GKE does.
func NamingUID(ctx context.Context, client kubernetes.Interface, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	cms := client.CoreV1().ConfigMaps(UIDConfigMapNamespace)
	for attempt := 0; attempt < 3; attempt++ {
		cm, err := cms.Get(ctx, UIDConfigMapName, metav1.GetOptions{})
		switch {
		case err == nil && cm.Data[UIDConfigMapKey] != "":
			return cm.Data[UIDConfigMapKey], nil
		case err == nil:
			uid, err := randomUID()
			if err != nil {
				return "", err
			}
			cm = cm.DeepCopy()
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[UIDConfigMapKey] = uid
			if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err == nil {
				klog.FromContext(ctx).Info("Stored a new cluster naming UID", "configMap", klog.KObj(cm), "uid", uid)
				return uid, nil
			} else if !apierrors.IsConflict(err) {
				return "", fmt.Errorf("updating ConfigMap %s/%s: %w", UIDConfigMapNamespace, UIDConfigMapName, err)
			}
		case apierrors.IsNotFound(err):
			uid, err := randomUID()
			if err != nil {
				return "", err
			}
			cm = &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: UIDConfigMapNamespace, Name: UIDConfigMapName},
				Data:       map[string]string{UIDConfigMapKey: uid},
			}
			if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err == nil {
				klog.FromContext(ctx).Info("Created the cluster naming UID", "configMap", klog.KObj(cm), "uid", uid)
				return uid, nil
			} else if !apierrors.IsAlreadyExists(err) {
				return "", fmt.Errorf("creating ConfigMap %s/%s: %w", UIDConfigMapNamespace, UIDConfigMapName, err)
			}
		default:
			return "", fmt.Errorf("reading ConfigMap %s/%s: %w", UIDConfigMapNamespace, UIDConfigMapName, err)
		}
		// Someone else wrote it concurrently: read it again.
	}
	return "", fmt.Errorf("could not read or store the naming UID in ConfigMap %s/%s", UIDConfigMapNamespace, UIDConfigMapName)
}

// ClusterUID returns the metadata.uid of the kube-system Namespace, the "cluster-uid" GKE
// writes in NEG descriptions.
func ClusterUID(ctx context.Context, client kubernetes.Interface) (string, error) {
	ns, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading Namespace %s: %w", metav1.NamespaceSystem, err)
	}
	if ns.UID == "" {
		return "", fmt.Errorf("namespace %s has no UID", metav1.NamespaceSystem)
	}
	return string(ns.UID), nil
}

// randomUID returns 8 random bytes as 16 lowercase hex characters.
func randomUID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a naming UID: %w", err)
	}
	return hex.EncodeToString(b), nil
}
