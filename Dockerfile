# authgate and the demo echo upstream in one small image.
FROM rust:1-bookworm AS build
# Pingora's build needs cmake (libz-ng-sys).
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin authgate --example echo

FROM debian:bookworm-slim
# System roots for clusters with tls: true (unless upstream_ca_file is set).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin authgate
COPY --from=build /src/target/release/authgate /usr/local/bin/authgate
COPY --from=build /src/target/release/examples/echo /usr/local/bin/authgate-echo
COPY conf/gateway.yaml /etc/authgate/gateway.yaml
USER authgate
# Inside a container the listeners must face the container network.
ENV AUTHGATE_LISTEN=0.0.0.0:8080 AUTHGATE_OPS_LISTEN=0.0.0.0:9090
EXPOSE 8080 9090
ENTRYPOINT ["authgate"]
CMD ["-c", "/etc/authgate/gateway.yaml"]
