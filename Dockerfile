# syntax=docker/dockerfile:1
# neg-controller image: a static binary on distroless, running as the nonroot user (65532).
# Multi-architecture: the build stage runs on the builder's own platform (BUILDPLATFORM) and
# cross-compiles for each target (TARGETOS/TARGETARCH), so no emulation is needed:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg COMMIT=$(git rev-parse HEAD) \
#     -t REGISTRY/neg-controller:TAG --push .
# Then install with Helm (charts/neg-controller, --set image.repository=…,image.tag=…) or point
# manifests/kustomization.yaml's images entry at it and `kubectl apply -k manifests/`.

# Same Go release as the Makefile's GOTOOLCHAIN (go1.27.3). Base images are pinned by tag; pin
# them by digest too (name:tag@sha256:…) in a release pipeline that can resolve digests.
FROM --platform=$BUILDPLATFORM golang:1.27.3 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=unknown
ARG COMMIT=unknown
WORKDIR /src
# Dependencies first, so source changes do not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags="-s -w -X github.com/neg-controller/neg-controller/pkg/version.version=${VERSION} -X github.com/neg-controller/neg-controller/pkg/version.commit=${COMMIT}" \
      -o /out/neg-controller ./cmd/neg-controller

# distroless static, the nonroot variant (user 65532), Debian 12.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/neg-controller /neg-controller
USER 65532:65532
# 8080 metrics (HTTP, or HTTPS with --metrics-secure), 8081 health with --metrics-secure, 9443 webhook.
EXPOSE 8080 8081 9443
ENTRYPOINT ["/neg-controller"]
