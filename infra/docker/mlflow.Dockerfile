# The shared MLflow tracking server: PostgreSQL backend store, artifacts proxied to S3.
#   DOCKER_BUILDKIT=1 docker build -f infra/docker/mlflow.Dockerfile -t REGISTRY/vitok-mlflow:3.17.2 .
# psycopg2 talks to PostgreSQL, boto3 to S3; the entry point is infra/mlflow/run_server.sh.
FROM python:3.11-slim

ARG MLFLOW_VERSION=3.17.2
RUN pip install --no-cache-dir "mlflow==${MLFLOW_VERSION}" "psycopg2-binary>=2.9" "boto3>=1.34" \
    && useradd --create-home --uid 1000 mlflow

COPY --chmod=0755 infra/mlflow/run_server.sh /usr/local/bin/run_server.sh
USER mlflow
EXPOSE 5000
ENTRYPOINT ["/usr/local/bin/run_server.sh"]
