# syntax=docker/dockerfile:1
# The image the Helm chart runs (charts/seawall: image.repository/tag): the
# `seawall` CLI for the backup/verify CronJobs and the exporter, PostgreSQL
# client tools, and `age` + `zstd` so that a disaster recovery can be done by
# hand from inside the same image (docs/manual-restore.md).
#
#   docker build --build-arg PG_MAJOR=16 -t ghcr.io/seawall/seawall:0.1.0 .
#
# PG_MAJOR is the PostgreSQL major of the client tools (pg_dump, pg_restore,
# pg_basebackup, pg_verifybackup). pg_dump must be at least the server's
# major (it refuses to dump a newer server): build with your server's major,
# or a newer one. Default 17.
#
# Runs as the non-root user 10001:10001 (the chart's runAsUser/runAsGroup)
# and works with a read-only root filesystem: bytecode is compiled at build
# time, nothing writes outside /tmp (the chart mounts an emptyDir there and
# sets HOME=/tmp) and the backup volume. No secret is baked in: passwords,
# API keys and age identities arrive at run time as *_FILE mounts.

ARG PYTHON_VERSION=3.12
ARG DEBIAN_RELEASE=bookworm

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/seawall \
    && /opt/seawall/bin/pip install --no-compile . \
    && /opt/seawall/bin/python -m compileall -q /opt/seawall/lib

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}
ARG PG_MAJOR=17
LABEL org.opencontainers.image.title="seawall" \
      org.opencontainers.image.description="Backup and disaster recovery for PostgreSQL and Qdrant" \
      org.opencontainers.image.licenses="Apache-2.0"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The PostgreSQL client of the chosen major comes from the PostgreSQL
# project's own apt repository (apt.postgresql.org), set up by Debian's
# postgresql-common script; Debian itself ships one major per release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" age zstd \
    && apt-get purge -y --auto-remove postgresql-common \
    && rm -rf /var/lib/apt/lists/* /etc/apt/sources.list.d/pgdg* \
    && "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_dump" --version \
    && age --version && zstd --version \
    && groupadd --gid 10001 seawall \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin seawall
COPY --from=build /opt/seawall /opt/seawall
ENV PATH="/opt/seawall/bin:/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}" \
    PG_BIN_DIR="/usr/lib/postgresql/${PG_MAJOR}/bin" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    BACKUP_DIR=/backups
USER 10001:10001
WORKDIR /tmp
# the exporter's default port (charts/seawall values exporter.port)
EXPOSE 9877
# The same command the chart's containers run (command: ["seawall"]); the
# chart passes the subcommand as args, e.g. ["postgres", "backup"].
ENTRYPOINT ["seawall"]
CMD ["--help"]
