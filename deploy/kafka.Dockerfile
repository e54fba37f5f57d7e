# The Kafka bridge (optimus-kafka) for deploy/compose.yaml's kafka profile, FROM
# the same local debian:bookworm-slim as the other services. Its binary is built on
# the host first (cargo build --release -p optimus-kafka) and copied in; it is an
# image of its own so that a stack without Kafka needs no librdkafka build.
#
#   docker build -f deploy/kafka.Dockerfile --build-arg PROFILE=release -t optimus-kafka:latest .
FROM debian:bookworm-slim
ARG PROFILE=release
COPY target/${PROFILE}/optimus-kafka /usr/local/bin/
COPY config/languages.json /etc/optimus/languages.json
ENV OPTIMUS_LANGUAGES=/etc/optimus/languages.json
USER 65534:65534
CMD ["optimus-kafka"]
