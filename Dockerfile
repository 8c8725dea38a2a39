# syntax=docker/dockerfile:1
#
# ferry's image: nothing but the static binary (and CA certificates for
# PostgreSQL over TLS). It is not run as such; an application's image copies
# the binary from it and makes it the ENTRYPOINT:
#
#   COPY --from=ferry:0.1.0 /ferry /usr/local/bin/ferry
#   COPY migrations /app/migrations
#   ENV DATABASE_URL=sqlite:///data/app.db
#   ENTRYPOINT ["ferry", "run", "--"]
#   CMD ["/app/server", "--port", "8080"]
#
# (replace ferry:0.1.0 by the published name and a pinned tag). Build:
#   docker build -t ferry:0.1.0 .
# or both architectures at once (BuildKit):
#   docker buildx build --platform linux/amd64,linux/arm64 -t ferry:0.1.0 .
#
# The builder stage runs the very script that `make static`, `make release`
# and CI run (.ci/build-static.sh): every library from its Debian 12 source
# package, built with musl. It runs on the build machine's platform and
# builds for TARGETARCH (set by buildx): natively with musl-gcc, or
# cross-built with Debian's gcc-aarch64-linux-gnu and musl-dev:arm64, as
# `make release` does. The binary is run here only when it is native.

FROM --platform=$BUILDPLATFORM debian:12 AS build
# the script builds for TARGETARCH; FERRY_STATIC_OUT puts ferry in
# build/static whichever architecture it is for
ARG TARGETARCH
ARG FERRY_STATIC_OUT=build/static
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN .ci/build-static.sh \
 && if [ -z "$TARGETARCH" ] || [ "$TARGETARCH" = "$(dpkg --print-architecture)" ]; then \
      build/static/ferry version && build/static/ferry help >/dev/null; fi

FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Static PID 1 for application images: upgrades the SQLite or PostgreSQL database safely at boot (snapshot, migrate, verify, restore on failure), then supervises the server" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="scratch" \
      ferry.usage="COPY --from=<this image> /ferry /usr/local/bin/ferry, then ENTRYPOINT [\"ferry\", \"run\", \"--\"] and the server as CMD"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/build/static/ferry /ferry
# Run directly it prints its version and the library versions it carries:
#   docker run --rm ferry:0.1.0
ENTRYPOINT ["/ferry"]
CMD ["version"]
