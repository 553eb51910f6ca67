// Package neg holds the small value types every other package shares: a network endpoint as
// GCE identifies it inside a GCE_VM_IP_PORT NEG (or, without
// instance, a NON_GCP_PRIVATE_IP_PORT NEG), sets of them, and a reference to one zonal NEG.
// It has no dependencies and does no I/O.
package neg
