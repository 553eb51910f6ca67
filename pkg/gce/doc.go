// Package gce is the controller's only way to Compute Engine: the context-first Cloud interface,
// its implementation over google.golang.org/api/compute/v1 (operations waited for, requestIds,
// per-method rate limits, a global cap on in-flight calls) and the classification of GCE errors
// into retry classes. It knows nothing about Kubernetes.
package gce
