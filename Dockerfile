# The emulator, serving both providers on 0.0.0.0 at the port its settings give (8080 by default).
#
#   docker build -t cloud-moderation-emulator .
#   docker run -p 8080:8080 cloud-moderation-emulator
#   docker run -p 9000:9000 -e EMULATOR_SERVER__PORT=9000 cloud-moderation-emulator
#   docker run -p 8080:8080 -v "$PWD/my-config.json:/etc/emulator/config.json:ro" cloud-moderation-emulator
#   docker run -p 8080:8080 -v emulator-data:/data cloud-moderation-emulator      # state kept in a volume
#   docker run -p 8080:8080 -e EMULATOR_STORAGE__PATH= cloud-moderation-emulator # in memory only
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Dependencies first, in a layer of their own: it is rebuilt only when pyproject.toml changes, not on
# every change to the source. The list is read from pyproject.toml (the runtime dependencies and the
# yaml extra, so a mounted config or scenario file may be YAML too).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['yaml']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# Then the package itself, without touching the dependencies again. A regular (non-editable) install:
# the default config travels inside the package.
COPY README.md ./
COPY emulator ./emulator
COPY fixtures ./fixtures
RUN pip install --no-deps . \
    && mkdir -p /etc/emulator && cp fixtures/default-config.json /etc/emulator/config.json \
    && rm -rf /src

WORKDIR /
# State lives in /data (SQLite, storage.path): a named volume there keeps it across container
# restarts and `docker rm`; Docker copies this directory's ownership into a new named volume. A bind
# mount must be writable by this user (uid shown by `docker run --rm --entrypoint id <image>`).
RUN useradd --system --no-create-home emulator \
    && mkdir -p /data && chown emulator:emulator /data
USER emulator
ENV EMULATOR_STORAGE__PATH=/data
VOLUME ["/data"]

# Listen on every interface of the container; the port is the config's server.port (8080 in the
# built-in one) unless EMULATOR_SERVER__PORT says otherwise. The config is read from
# /etc/emulator/config.json: mount your own (JSON) there; scenario files it names may be YAML.
ENV EMULATOR_SERVER__HOST=0.0.0.0
EXPOSE 8080

# Health from inside the container, at the port the settings give (the same file and EMULATOR_*
# variables the server reads), with the interpreter the image already has.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; from emulator.config import load; s = load('/etc/emulator/config.json').server; host = '127.0.0.1' if s.host in ('0.0.0.0', '::', '') else s.host; sys.exit(0 if urllib.request.urlopen(f'http://{host}:{s.port}/_emulator/health', timeout=2).status == 200 else 1)"]

# Exec form: the server is PID 1 and gets SIGTERM from `docker stop` directly. No --host or --port
# here: they would override the settings (and the HEALTHCHECK would no longer follow them).
ENTRYPOINT ["emulator"]
CMD ["serve", "--config", "/etc/emulator/config.json"]
