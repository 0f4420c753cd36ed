# One image for the five services; `tarifa serve <service>` picks which one a container runs.
# Why one image and not five: docs/operations.md ("One image"). Lint: hadolint (tests/deploy/).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# pip compiles every module while installing: the runtime's root file system is read-only.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/tarifa/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/tarifa

# Dependencies first, from the manifests alone: this layer is rebuilt when a pyproject.toml or
# constraints.txt changes, never when only code does. Versions come from constraints.txt.
COPY constraints.txt ./
COPY libs/common/pyproject.toml libs/common/
COPY services/collector/pyproject.toml services/collector/
COPY services/rater/pyproject.toml services/rater/
COPY services/voip-summit/pyproject.toml services/voip-summit/
COPY services/invoicer/pyproject.toml services/invoicer/
COPY services/notifier/pyproject.toml services/notifier/
COPY libs/demo/pyproject.toml libs/demo/
RUN python -c "import pathlib, tomllib; \
deps = {d for p in pathlib.Path('.').glob('**/pyproject.toml') for d in tomllib.loads(p.read_text())['project']['dependencies'] if not d.startswith('tarifa-')}; \
pathlib.Path('/tmp/requirements.txt').write_text('\n'.join(sorted(deps | {'hatchling'})) + '\n')" \
    && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt

# Then the code: the workspace packages themselves, without their (already installed) dependencies.
COPY libs/common/src libs/common/src
COPY services/collector/src services/collector/src
COPY services/rater/src services/rater/src
COPY services/voip-summit/src services/voip-summit/src
COPY services/invoicer/src services/invoicer/src
COPY services/notifier/src services/notifier/src
COPY libs/demo/src libs/demo/src
RUN pip install --no-cache-dir --no-deps --no-build-isolation \
        ./libs/common ./services/collector ./services/rater ./services/voip-summit ./services/invoicer ./services/notifier ./libs/demo \
    && pip uninstall --yes hatchling

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 tarifa \
    && useradd --system --no-log-init --uid 10001 --gid tarifa --home-dir /home/tarifa --create-home tarifa
COPY --from=build /opt/tarifa /opt/tarifa
ENV PATH=/opt/tarifa/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TARIFA_HTTP_HOST=0.0.0.0 \
    TARIFA_LOG_FORMAT=json
WORKDIR /home/tarifa
USER 10001:10001
# collector, rater, voip-summit, invoicer, notifier; 1080 is the collector's SMDR listener.
EXPOSE 8101 8102 8103 8104 8105 1080
# uvicorn drains requests for up to 20 s and consumers finish their batch on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tarifa"]
CMD ["--help"]
