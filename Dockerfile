# abuseipdb-ioc in a container: build with the locked dependencies, run as a non-root user
# with the state in a volume.
#   docker build -t abuseipdb-ioc .
#   docker run -d -p 8000:8000 -v abuseipdb-ioc:/data --env-file ioc.env abuseipdb-ioc

FROM rust:1.95-bookworm AS builder
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY assets ./assets
RUN cargo build --release --locked --bin abuseipdb-ioc \
 && strip target/release/abuseipdb-ioc

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 abuseipdb-ioc \
 && useradd --system --uid 10001 --gid abuseipdb-ioc --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin abuseipdb-ioc \
 && install -d -o abuseipdb-ioc -g abuseipdb-ioc -m 0750 /data
COPY --from=builder /build/target/release/abuseipdb-ioc /usr/local/bin/abuseipdb-ioc

ENV DATA_DIR=/data API_HOST=0.0.0.0 API_PORT=8000
VOLUME /data
EXPOSE 8000
USER abuseipdb-ioc:abuseipdb-ioc
WORKDIR /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["abuseipdb-ioc", "healthcheck"]
ENTRYPOINT ["abuseipdb-ioc"]
CMD ["serve"]
