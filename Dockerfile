# jobwire container image. Two stages on Debian bookworm: the build stage
# runs the same scripts as a developer checkout (scripts/setup build,
# scripts/build), the runtime stage holds the binary, the dashboard files
# and the shared libraries it links, and runs as an unprivileged user.
#
# Configuration comes from the environment (see `jobwire --help`) or a YAML
# file passed with --config; logs go to stderr. Stop with SIGTERM: readiness
# turns 503, the listener closes, webhooks in flight finish, the process
# exits 0 within about 30 s.
#
#   docker build -t jobwire .
#   docker run -p 8001:8001 -e JOBWIRE_REDIS_URL=redis://10.0.0.5:6379/0 \
#       -e REPLICATE_WEBHOOK_SECRET=whsec_... jobwire

FROM debian:12.8-slim AS build
WORKDIR /src
COPY . .
RUN scripts/docker-build

FROM debian:12.8-slim
COPY scripts/install-runtime-deps scripts/docker-healthcheck /usr/local/lib/jobwire/
RUN /usr/local/lib/jobwire/install-runtime-deps
COPY --from=build /usr/local/bin/jobwire /usr/local/bin/jobwire
COPY --from=build /usr/local/share/jobwire /usr/local/share/jobwire

ENV JOBWIRE_LISTEN=0.0.0.0:8001 \
    JOBWIRE_LOG_LEVEL=info
USER 10001:10001
EXPOSE 8001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/lib/jobwire/docker-healthcheck"]
ENTRYPOINT ["/usr/local/bin/jobwire"]
