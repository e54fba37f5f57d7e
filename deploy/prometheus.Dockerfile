# Prometheus for deploy/compose.yaml's monitoring profile, from Debian's package,
# FROM the same local debian:bookworm-slim (no registry needed). Context: deploy/.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
COPY prometheus.yml /etc/prometheus/prometheus.yml
# A new named volume takes this directory's owner, so Prometheus can write to it.
RUN mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
CMD ["prometheus", "--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
