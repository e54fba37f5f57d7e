# The end of every language image, appended by `optimus-cli build-image` after the
# language's own Dockerfile: the shared runner and the launcher. They come last so
# that changing either rebuilds these layers only, never a language's packages; the
# image's labels (the runner's fingerprint, the report format) are stamped by the
# same build.
COPY runner.sh /opt/optimus/runner.sh
COPY launcher/optimus-launcher /opt/optimus/launcher
WORKDIR /work
