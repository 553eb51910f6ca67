package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/neg-controller/neg-controller/pkg/gce"
	"github.com/neg-controller/neg-controller/pkg/naming"
)

// Where GKE keeps the cluster naming UID.
const (
	UIDConfigMapNamespace = "kube-system"
	UIDConfigMapName      = "ingress-uid"
	UIDConfigMapKey       = "uid"
)

// uidConfigMap is "kube-system/ingress-uid", for messages.
const uidConfigMap = UIDConfigMapNamespace + "/" + UIDConfigMapName

// NamingUID returns the cluster naming UID: flagValue if set (nothing is read or stored), else
// the "uid" key of ConfigMap kube-system/ingress-uid, validated like --cluster-uid.
//
// When the ConfigMap or its key is missing, the UID is never invented while NEGs of this
// cluster exist: the NEGs of the project whose description names clusterUID (the kube-system
// Namespace UID) are listed, and the uid8 their generated names were made with is taken and
// stored. Several such uid8s, or NEGs of this cluster none of which has a verifiable generated
// name, are an error that asks for --cluster-uid. Only when no NEG names this cluster is a new
// UID of 16 random lowercase hex characters created and stored, as GKE does.
func NamingUID(ctx context.Context, client kubernetes.Interface, cloud gce.Cloud, clusterUID, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	logger := klog.FromContext(ctx)
	cms := client.CoreV1().ConfigMaps(UIDConfigMapNamespace)
	var chosen, how string // decided at most once, on the first attempt that needs it
	var uid string
	attempt := func() error {
		cm, err := cms.Get(ctx, UIDConfigMapName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			cm = nil
		case err != nil:
			return fmt.Errorf("reading ConfigMap %s: %w", uidConfigMap, err)
		case cm.Data[UIDConfigMapKey] != "":
			uid = cm.Data[UIDConfigMapKey]
			if err := validateNamingUID(uid); err != nil {
				return fmt.Errorf("ConfigMap %s, key %s: the naming UID %w; correct it (or set --cluster-uid)",
					uidConfigMap, UIDConfigMapKey, err)
			}
			return nil
		}
		if chosen == "" {
			if chosen, how, err = newNamingUID(ctx, cloud, clusterUID); err != nil {
				return err
			}
		}
		if err := storeNamingUID(ctx, cms, cm, chosen); err != nil {
			return err
		}
		logger.Info("Stored the cluster naming UID", "configMap", uidConfigMap, "uid", chosen, "source", how)
		uid = chosen
		return nil
	}
	// A concurrent writer (Conflict, AlreadyExists) makes the next attempt read its UID.
	var last error
	err := retry.OnError(wait.Backoff{Steps: 3}, concurrentWrite, func() error {
		last = attempt()
		return last
	})
	if err == nil {
		// retry.OnError returns nil when an attempt's error wraps context.Canceled or
		// DeadlineExceeded before any retriable one (wait.Interrupted): keep that error.
		err = last
	}
	if concurrentWrite(err) {
		return "", fmt.Errorf("could not read or store the naming UID in ConfigMap %s: %w", uidConfigMap, err)
	}
	if err != nil {
		return "", err
	}
	return uid, nil
}

// concurrentWrite reports whether err is another writer's create or update winning the race.
func concurrentWrite(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)
}

// storeNamingUID writes uid under the "uid" key: it creates the ConfigMap when cm is nil, else
// updates a copy of cm (other keys kept). A concurrent writer yields an error for which
// apierrors.IsAlreadyExists or IsConflict is true.
func storeNamingUID(ctx context.Context, cms typedcorev1.ConfigMapInterface, cm *corev1.ConfigMap, uid string) error {
	if cm == nil {
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: UIDConfigMapNamespace, Name: UIDConfigMapName},
			Data:       map[string]string{UIDConfigMapKey: uid},
		}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating ConfigMap %s: %w", uidConfigMap, err)
		}
		return nil
	}
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[UIDConfigMapKey] = uid
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating ConfigMap %s: %w", uidConfigMap, err)
	}
	return nil
}

// newNamingUID decides the naming UID of a cluster whose ConfigMap has none: the uid8 of its
// existing generated-name NEGs, else a random one if it has no NEG at all. how says which, for
// the log.
func newNamingUID(ctx context.Context, cloud gce.Cloud, clusterUID string) (uid, how string, err error) {
	negs, err := cloud.ListNEGs(ctx)
	if err != nil {
		return "", "", fmt.Errorf("ConfigMap %s has no naming UID, and listing NEGs to recover it failed "+
			"(a new UID is only created when no NEG of this cluster exists): %w", uidConfigMap, err)
	}
	byUID8, unverified := namingUIDsOfNEGs(negs, clusterUID)
	switch {
	case len(byUID8) == 1:
		for uid8, names := range byUID8 {
			klog.FromContext(ctx).Info("ConfigMap has no naming UID: recovered it from the names of this cluster's NEGs",
				"configMap", uidConfigMap, "uid", uid8, "negs", len(names), "examples", sample(names))
			return uid8, "recovered from NEG names", nil
		}
	case len(byUID8) > 1:
		var found []string
		for _, uid8 := range slices.Sorted(maps.Keys(byUID8)) {
			found = append(found, fmt.Sprintf("%s (%s)", uid8, strings.Join(sample(byUID8[uid8]), ", ")))
		}
		return "", "", fmt.Errorf("ConfigMap %s has no naming UID and the NEGs of this cluster (cluster-uid %s) were "+
			"named with %d different ones: %s; set --cluster-uid to the one to keep", uidConfigMap, clusterUID,
			len(byUID8), strings.Join(found, "; "))
	case len(unverified) > 0:
		return "", "", fmt.Errorf("ConfigMap %s has no naming UID and none of the %d NEGs of this cluster (cluster-uid %s) "+
			"has a name generated from one (%s); set --cluster-uid to the naming UID they were made with",
			uidConfigMap, len(unverified), clusterUID, strings.Join(sample(unverified), ", "))
	}
	uid, err = randomUID()
	if err != nil {
		return "", "", err
	}
	klog.FromContext(ctx).Info("No NEG of this cluster exists: chose a new random naming UID", "configMap", uidConfigMap, "uid", uid)
	return uid, "new", nil
}

// namingUIDsOfNEGs looks at the NEGs whose description names clusterUID. A NEG name was
// generated with uid8 iff naming.NewNamer(uid8).NEGName(namespace, service, port) of its
// description gives the name back; candidates are taken from the "k8s1-<uid8>-" prefix.
// byUID8 maps each uid8 found to its NEG names (zone/name); unverified lists this cluster's
// NEGs without such a name (custom names, other schemes, incomplete descriptions).
func namingUIDsOfNEGs(negs []gce.NEG, clusterUID string) (byUID8 map[string][]string, unverified []string) {
	byUID8 = map[string][]string{}
	for _, n := range negs {
		d, err := naming.ParseDescription(n.Description)
		if err != nil || d.ClusterUID != clusterUID {
			continue
		}
		ref := n.Zone + "/" + n.Name
		if uid8, ok := generatedWith(n.Name, d); ok {
			byUID8[uid8] = append(byUID8[uid8], ref)
		} else {
			unverified = append(unverified, ref)
		}
	}
	return byUID8, unverified
}

// generatedWith returns the uid8 name was generated with for the Service port of d, if any.
func generatedWith(name string, d naming.Description) (string, bool) {
	rest, ok := strings.CutPrefix(name, "k8s1-")
	if !ok {
		return "", false
	}
	uid8, _, ok := strings.Cut(rest, "-")
	port, err := strconv.ParseInt(d.Port, 10, 32)
	if !ok || uid8 == "" || len(uid8) > 8 || err != nil || validateNamingUID(uid8) != nil {
		return "", false
	}
	if naming.NewNamer(uid8).NEGName(d.Namespace, d.ServiceName, int32(port)) != name {
		return "", false
	}
	return uid8, true
}

// sample returns the first few of names, sorted, with a count of the rest.
func sample(names []string) []string {
	const n = 3
	s := slices.Sorted(slices.Values(names))
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
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
