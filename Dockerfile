# The gorlhf binary in a minimal image: a fully static build (CGO_ENABLED=0,
# -tags noblas: no run-time BLAS loading, so no libc), copied into distroless
# "static" (CA certificates, /etc/passwd, tzdata; no shell). The image's
# entrypoint is the binary, so `gorlhf launch k8s` renders only the arguments.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t gorlhf:dev .
#   docker run --rm gorlhf:dev version
#
# Models and data are not in the image: mount them (e.g. --volume with
# gorlhf launch k8s). The embedded stories260K model works without any.
# Not built on the project's CI machine (it has no container registry); see
# docs/DISTRIBUTED.md.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The driver and its workers compare versions at connect: build them from one image.
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -tags noblas -ldflags="-s -w -X main.version=${VERSION}" -o /out/gorlhf ./cmd/gorlhf

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gorlhf /gorlhf
USER nonroot:nonroot
WORKDIR /home/nonroot
ENTRYPOINT ["/gorlhf"]
