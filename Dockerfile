# The emulator with its built-in default config, serving both providers on 0.0.0.0:8080.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY fixtures ./fixtures
# A regular (non-editable) install: the default config travels inside the package; with the yaml
# extra, a mounted config or scenario file may be YAML too.
RUN pip install '.[yaml]' && rm -rf /src

WORKDIR /
RUN useradd --system --no-create-home emulator
USER emulator

EXPOSE 8080
# Health from inside the container, with the interpreter the image already has.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_emulator/health', timeout=2).status == 200 else 1)"]

# Exec form: the server is PID 1 and gets SIGTERM from `docker stop` directly.
ENTRYPOINT ["emulator"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
