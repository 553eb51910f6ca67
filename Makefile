# neg-controller — run `make help` for the targets.
SHELL := /usr/bin/env bash
# Go 1.27.3: Go 1.26.8 (the machine's default) has standard-library vulnerabilities reachable
# through net/http (HTTP/2, the webhook server), crypto/tls and crypto/x509. The go command
# fetches this toolchain from the module proxy on first use (about 10 s).
export GOTOOLCHAIN := go1.27.3
GO ?= go
BIN := $(CURDIR)/bin
STATICCHECK_VERSION ?= v0.8.2
E2E_TIMEOUT ?= 40m
RACE ?= -race
# Build identity, stamped into pkg/version (neg-controller --version, neg_controller_build_info,
# the user agent GCE records in audit logs). Override for release builds: make build VERSION=v0.3.0
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -X github.com/neg-controller/neg-controller/pkg/version.version=$(VERSION) -X github.com/neg-controller/neg-controller/pkg/version.commit=$(COMMIT)

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build neg-controller and fakegce into ./bin (stamped with VERSION and COMMIT).
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

.PHONY: fmt
fmt: ## Format all Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: verify
verify: ## gofmt check, go vet (also with the e2e tag), staticcheck, the manifests render, README's flag table.
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/... ./test/...
	@# The e2e tag only adds files, so one run with it checks every file.
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags e2e ./...
	hack/verify-manifests.sh
	$(GO) test -count=1 -run '^TestREADMEFlagTable$$' ./pkg/app/

.PHONY: lint
lint: verify ## Alias of verify.

.PHONY: test-unit
test-unit: ## Unit and controller tests (with the race detector).
	$(GO) test $(RACE) -count=1 ./...

.PHONY: k8s-bins
k8s-bins: ## Build (once, cached) etcd, kube-apiserver, kube-controller-manager and kubectl.
	@hack/k8s/build.sh >/dev/null

.PHONY: e2e
e2e: build k8s-bins ## End-to-end tests against a real local control plane and the fakegce binary.
	NEG_BIN_DIR=$(BIN) $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -p 1 ./test/... ./e2e/...

.PHONY: chart-verify
chart-verify: ## Helm chart: lint, flags documented, same RBAC and args as manifests/ (tools module hack/helmcheck).
	cd hack/helmcheck && $(GO) vet ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./... && $(GO) test -count=1 ./...

.PHONY: chart-gen
chart-gen: ## Regenerate the chart's flag table, values and schema, and e2e/testdata/helm-rendered.yaml.
	cd hack/helmcheck && $(GO) test -count=1 -run 'TestFlagsDocumented|TestE2EGolden' ./... -update

.PHONY: test
test: verify test-unit chart-verify e2e ## Everything CI runs: verify, unit tests with -race, the chart check, e2e.

# run is built, then run directly rather than with `go run`: go run exits 1 when Ctrl-C reaches
# it, even though the program stopped cleanly with 0, and make then printed an Error line.
.PHONY: run
run: build k8s-bins ## Start a local control plane, fakegce, the pod simulator (dual-stack; DUALSTACK=0: IPv4 only), neg-controller and a sample app (HYBRID=1: nodes outside Google Cloud, hybrid NEGs).
	$(GO) build -o $(BIN)/run ./test/cmd/run
	$(BIN)/run $(if $(HYBRID),--hybrid) $(if $(filter 0,$(DUALSTACK)),--dual-stack=false)

.PHONY: bench
bench: build k8s-bins ## Benchmarks vs local control plane + fakegce (BENCH_SCALE=small|full, BENCH_ARGS="--scenarios=churn"); writes _out/bench.
	NEG_BIN_DIR=$(BIN) BENCH_SCALE=$(BENCH_SCALE) $(GO) run ./test/cmd/bench $(BENCH_ARGS)

.PHONY: clean
clean: ## Remove build output (the cached Kubernetes build stays in ~/.cache/neg-controller).
	rm -rf $(BIN) .run
