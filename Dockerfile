# syntax=docker/dockerfile:1
# redis-cluster-exporter image: docker build -t redis-cluster-exporter .
# Used by docker-compose.monitoring.yml (service redis-exporter).

# ---- build
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# --locked: build exactly Cargo.lock; -p: the exporter only (the workspace's simulator stays out of the image). The cache mounts only speed up rebuilds (BuildKit); the binary is
# copied out of the cached target dir because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p redis-cluster-exporter \
 && install -m 0755 target/release/redis-cluster-exporter /usr/local/bin/redis-cluster-exporter

# ---- run
FROM debian:bookworm-slim
# ca-certificates: rediss:// (TLS) to Redis with the system roots; libssl3 in case the TLS stack is OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 exporter \
 && useradd --system --uid 10001 --gid exporter --home-dir /data --shell /usr/sbin/nologin exporter \
 && mkdir -p /data \
 && chown exporter:exporter /data
COPY --from=builder /usr/local/bin/redis-cluster-exporter /usr/local/bin/redis-cluster-exporter

# The durable event log (/events survives restarts) lives on this volume.
VOLUME ["/data"]
ENV EVENT_LOG=/data/events.jsonl \
    LISTEN_ADDRESS=0.0.0.0:9121
USER 10001:10001
WORKDIR /data
EXPOSE 9121
ENTRYPOINT ["/usr/local/bin/redis-cluster-exporter"]
