# The OpenTelemetry Collector image is distroless (no shell, no wget), so a container
# healthcheck has nothing to run. This adds busybox's statically linked musl build, used only
# by the healthcheck in docker-compose.yml (GET the health_check extension on :13133).
FROM busybox:1.36.1-musl AS probe

FROM otel/opentelemetry-collector-contrib:0.120.0
COPY --from=probe /bin/busybox /busybox
COPY otel-collector.yaml /etc/otelcol-contrib/config.yaml
