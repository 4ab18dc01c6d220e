# Every Sluice service in one small image: build with the Rust toolchain,
# run on Debian slim as a non-root user. Pick the service with the command:
#   docker build -t sluice .
#   docker run sluice query-api
# Checked by `make test` (deploy/docker/check.sh: hadolint).

FROM rust:1.95-bookworm AS build
# librdkafka is built from source (make, a C/C++ compiler); openssl-sys and
# aws-lc-sys need their headers and cmake.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libssl-dev pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && for bin in command-api outbox-relay schema-registry projector-redis projector-postgres query-api lag-exporter sluice; do \
         cp "target/release/$bin" /out/; \
       done

FROM debian:bookworm-slim
# ca-certificates for TLS to brokers and databases, libssl3 for native-tls,
# curl for the health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sluice
COPY --from=build /out/ /usr/local/bin/
COPY schemas /opt/sluice/schemas
# (SLUICE_SCHEMAS_DIR=/opt/sluice/schemas is set where a service takes it:
# services refuse SLUICE_* variables they do not know.)
ENV SLUICE_LOG=info
USER 10001:10001
EXPOSE 8080
CMD ["query-api"]
