# syntax=docker/dockerfile:1
# neg-controller image: a static binary on distroless, running as the nonroot user (65532).
#   docker build -t REGISTRY/neg-controller:TAG .
# Then point manifests/kustomization.yaml's images entry at it and `kubectl apply -k manifests/`.

# Same Go release as the Makefile's GOTOOLCHAIN (go1.27.3).
FROM golang:1.27.3 AS build
WORKDIR /src
# Dependencies first, so source changes do not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" \
      -o /out/neg-controller ./cmd/neg-controller

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/neg-controller /neg-controller
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/neg-controller"]
