// Package app wires neg-controller together: the Options struct with its flags and
// validation, discovery of the project, region, network and cluster name from the GCE
// metadata server for whatever the flags leave empty, the cluster's naming UID (ConfigMap
// kube-system/ingress-uid) and description UID (kube-system Namespace), the Kubernetes and
// Compute Engine clients, the informers, and the controller. Library packages never read
// flags; they get plain values from here.
package app
