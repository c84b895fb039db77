# The OpenTelemetry Collector image is distroless (no shell, no wget), so a container
# healthcheck has nothing to run. This adds busybox's statically linked musl build, used only
# by the healthcheck in docker-compose.yml (GET the health_check extension on :13133).
FROM busybox:1.36.1-musl@sha256:3c6ae8008e2c2eedd141725c30b20d9c36b026eb796688f88205845ef17aa213 AS probe

FROM otel/opentelemetry-collector-contrib:0.120.0@sha256:85ac41c2db88d0df9bd6145e608a3cb023f5d8443868adbfbbf66efb51087917
COPY --from=probe /bin/busybox /busybox
COPY otel-collector.yaml /etc/otelcol-contrib/config.yaml
