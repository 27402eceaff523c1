# perpbot live node image: `docker build -t perpbot .` then see compose.yaml / README "Run it for months".
# Secrets never go into the image: pass them at run time (env file or environment).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 perpbot
WORKDIR /app

COPY pyproject.toml README.md LICENSE* ./
COPY src ./src
RUN pip install --upgrade pip && pip install .

USER perpbot
# models, reports and the SQLite fallback ledger; mount a volume here
ENV PERPBOT_OUTPUT_DIR=/data
VOLUME ["/data"]
WORKDIR /data
ENTRYPOINT ["perpbot"]
CMD ["run", "--mode", "live"]
