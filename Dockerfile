# authgate alone (the default, last stage: `docker build .`), and a `demo`
# target adding the echo upstream for docker-compose.yml (`--target demo`).
FROM rust:1-bookworm AS build
# Pingora's build needs cmake (libz-ng-sys).
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin authgate --example echo

FROM debian:bookworm-slim AS base
# System roots for clusters with tls: true (unless upstream_ca_file is set).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin authgate
COPY --from=build /src/target/release/authgate /usr/local/bin/authgate
COPY conf/gateway.yaml /etc/authgate/gateway.yaml
USER authgate
# Inside a container the listeners must face the container network. The ops
# listener (metrics, health) then faces it too: publish 9090 to the host's
# loopback only, or set AUTHGATE_OPS_LISTEN to an address only operators reach.
ENV AUTHGATE_LISTEN=0.0.0.0:8080 AUTHGATE_OPS_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
ENTRYPOINT ["authgate"]
CMD ["-c", "/etc/authgate/gateway.yaml"]

# The demo echo upstream, for docker compose only: never deploy this target.
FROM base AS demo
COPY --from=build /src/target/release/examples/echo /usr/local/bin/authgate-echo

# The production image: no demo upstream.
FROM base AS production
