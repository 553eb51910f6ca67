// Package helmcheck checks the Helm chart charts/neg-controller against the controller and the
// kustomize base, in a Go module of its own so that Helm and kustomize (and their dependency
// trees) never enter the product's go.mod.
//
// Its tests (`make chart-verify`, part of `make test`):
//   - keep the chart's flag documentation equal to the binary's flags: the flags block of
//     values.yaml (every flag, at the binary's default, with its help text), the table in the
//     chart's README.md and files/flag-defaults.yaml (what the templates compare values with,
//     to pass only changed flags) are generated from app.Options.AddFlags; `go test -update`
//     rewrites them;
//   - render the chart with the Helm Go SDK and the kustomize base with the kustomize API, and
//     require the same RBAC rules (and bindings) and the same Deployment arguments for the
//     default values, and for each optional component against the chart values that match it;
//   - lint the chart as `helm lint` does (Chart.yaml, values against values.schema.json,
//     templates, CRDs) and render it with every optional feature on;
//   - keep e2e/testdata/helm-rendered.yaml, the chart rendered for the e2e suite (which installs
//     its RBAC and CRDs and runs the controller under its ServiceAccount, e2e/helm_test.go), equal
//     to what the chart renders: the e2e module must not import Helm, so it reads this file.
package helmcheck
