# The core image: every Abaco process runs from it. With `api=reg|mes|admin|metrics` (and `server`,
# `threads`, `bind`) it starts that web app (images/core/entry.sh); a command picks an agent:
# `python3 -m actors.spawner|health|events`, or `python3 -m actors.worker` (what spawners run).
# The configuration is mounted at /etc/service.conf.
#
# This project's machines have no registry (images/README.md, README "Run it in containers"): the default base is the
# local Debian image images/base/python.sh makes, and pip installs only from the wheelhouse
# images/wheelhouse.sh builds in .build/wheelhouse, so once both exist this builds with no network:
#   docker build -t abaco/core:dev .                 (images/core.sh does the same, and checks it)
# A machine that can pull images and reach PyPI:
#   docker build --build-arg BASE_IMAGE=python:3.11-slim -t abaco/core:dev .
ARG BASE_IMAGE=abaco/python-base:local
FROM ${BASE_IMAGE}

# Extra pip options, e.g. "--no-index" to fail rather than reach the index when the wheelhouse lacks
# a package.
ARG PIP_ARGS=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Python packages first, in their own cached layers: a change under actors/ rebuilds in seconds.
# The wildcard lets the build work on a machine without a wheelhouse (packages then come from the index):
# `.build*` copies .build/ (of which .dockerignore lets only wheelhouse/ through) to /tmp/wheels/, and
# matches nothing on a fresh clone. The wildcard sits at the top level on purpose: BuildKit (the default
# builder of current Docker) fails on `.build/wheelhouse*` when .build/ itself does not exist.
# With a wheelhouse, pip uses it alone (--no-index): there is no index to reach here.
COPY requirements.txt .build* /tmp/wheels/
RUN if [ -f /tmp/wheels/wheelhouse/.stamp ]; then local="--no-index"; else local=""; fi \
    && PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir $local $PIP_ARGS \
        --find-links /tmp/wheels/wheelhouse -r /tmp/wheels/requirements.txt \
    && rm -rf /tmp/wheels \
    && touch /var/log/service.log

COPY images/core/entry.sh /abaco/entry.sh
COPY actors /abaco/actors
# compiled once here, not by every worker container at its start (about 50 ms each)
RUN python3 -m compileall -q /abaco/actors
WORKDIR /abaco
ENV PYTHONUNBUFFERED=1 \
    PYTHONPATH=/abaco
EXPOSE 5000

CMD ["/abaco/entry.sh"]
