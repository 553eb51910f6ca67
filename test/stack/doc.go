// Package stack brings up the whole local neg-controller environment in one call, for `make run`,
// the e2e suite and the benchmarks: a real control plane (test/localcluster), the Compute Engine
// emulator (pkg/fakegce) served in-process on a loopback port, the pod simulator (test/podsim)
// with nodes in every zone registered as fakegce instances, and the neg-controller binary run as
// a separate process that can be stopped, killed and restarted.
//
// It lives under test/ and must never be imported by pkg/ or cmd/.
package stack
