# The itsm worker image (docker-compose.yml builds it). Also carries the `itsm` CLI.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY definitions ./definitions
COPY worker ./worker
COPY cli ./cli
COPY itsmflow ./itsmflow
# The process packages every worker of the queue runs (a worker refuses a queue where another
# serves a different set): the example, as `make install` installs it for local workers.
COPY examples/access-review ./examples/access-review
RUN pip install '.[postgres,otel]' ./examples/access-review \
    && python -m compileall -q "$(python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && useradd --create-home --uid 10001 itsm \
    && mkdir -p /data && chown itsm /data
USER itsm
WORKDIR /data
CMD ["itsm", "worker"]
