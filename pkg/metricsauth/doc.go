// Package metricsauth guards the metrics endpoint the way Kubernetes components and
// controller-runtime's secured metrics server do, without an authenticating proxy: every
// request must carry a bearer token, which the API server authenticates (a TokenReview), and the
// user it names must be allowed "get" on the request's non-resource URL (a SubjectAccessReview,
// e.g. "/metrics"). A Prometheus whose ServiceAccount is bound to the ClusterRole
// neg-controller-metrics-reader passes; anyone else gets 401 (no or bad token) or 403 (not
// allowed).
//
// Decisions are cached per token, verb and path for a short time (allowed ones longer than
// denied ones), so a scrape every few seconds costs two API calls a minute at most; errors
// talking to the API server are never cached and answer 500. The controller's identity needs
// create on tokenreviews.authentication.k8s.io and subjectaccessreviews.authorization.k8s.io
// (the built-in ClusterRole system:auth-delegator).
package metricsauth
