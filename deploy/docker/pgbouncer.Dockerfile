# PgBouncer for the production overlay: Debian's package, the version the tests run the
# services through (1.18). No build context is needed:
#   docker build -t registry.example.internal/matcha/pgbouncer:1.18.0 - < deploy/docker/pgbouncer.Dockerfile
FROM debian:bookworm-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbouncer ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# SIGINT is PgBouncer's safe shutdown (transactions in progress finish); SIGTERM would cut them.
STOPSIGNAL SIGINT
USER 10001:10001
ENTRYPOINT ["/usr/sbin/pgbouncer"]
CMD ["/etc/pgbouncer/pgbouncer.ini"]
