# The core image: every Abaco process (web APIs under gunicorn, spawner, worker, health, clientg) runs
# from it; the role is chosen by the command, e.g. `python3 -m actors.spawner`.
#
# A machine that can pull images:   docker build -t abaco/core:dev .
# This project's machines (no registry: images/README.md) build through images/core.sh, which amounts to:
#   images/wheelhouse.sh
#   DOCKER_BUILDKIT=0 /usr/bin/docker build --network none \
#       --build-arg BASE_IMAGE=abaco/python-base:local --build-arg PIP_ARGS=--no-index -t abaco/core:dev .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# "--no-index" when the wheelhouse holds every package (no package index reachable from the build).
ARG PIP_ARGS=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Python packages first, in their own cached layers: a change under actors/ rebuilds in seconds.
# The wildcard lets the build work on a machine without a wheelhouse (packages then come from the index):
# `.build*` copies .build/ (of which .dockerignore lets only wheelhouse/ through) to /tmp/wheels/, and
# matches nothing on a fresh clone. The wildcard sits at the top level on purpose: BuildKit (the default
# builder of current Docker) fails on `.build/wheelhouse*` when .build/ itself does not exist.
COPY requirements.txt .build* /tmp/wheels/
RUN PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --no-cache-dir $PIP_ARGS \
        --find-links /tmp/wheels/wheelhouse -r /tmp/wheels/requirements.txt \
    && rm -rf /tmp/wheels \
    && touch /var/log/service.log

COPY actors /abaco/actors
WORKDIR /abaco
ENV PYTHONUNBUFFERED=1 \
    PYTHONPATH=/abaco

CMD ["python3", "-m", "actors.worker"]
