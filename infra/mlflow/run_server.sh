#!/usr/bin/env bash
# The shared MLflow tracking server: PostgreSQL backend store, artifacts proxied to S3.
#
#   export MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@db.internal:5432/mlflow   # no password in the URI
#   export PGPASSWORD=...                         # libpq reads it; from a Secret / your secret store
#   export MLFLOW_ARTIFACTS_DESTINATION=s3://my-bucket/mlartifacts
#   export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...   # or an instance / IRSA role
#   infra/mlflow/run_server.sh                    # binds 127.0.0.1:5000
#   infra/mlflow/run_server.sh --host 0.0.0.0 --allowed-hosts 'mlflow.internal:5000,localhost:*'
#
# Options (each also settable by the environment variable in brackets):
#   --backend-store-uri URI      [MLFLOW_BACKEND_STORE_URI]      required; postgresql://user@host:port/db
#   --artifacts-destination URI  [MLFLOW_ARTIFACTS_DESTINATION]  required; s3://bucket/prefix
#   --host HOST                  [MLFLOW_HOST]           default 127.0.0.1 (loopback only)
#   --port PORT                  [MLFLOW_PORT]           default 5000
#   --allowed-hosts LIST         [MLFLOW_ALLOWED_HOSTS]  Host headers accepted; required when --host is not
#                                                        loopback (mlflow's default only admits localhost and
#                                                        private IPs, so a DNS name would be refused)
#   --workers N                  [MLFLOW_WORKERS]        default 4
#   --dry-run                    print the mlflow command instead of running it
#
# Secrets never go on the command line (where `ps` shows them): the DB password comes from PGPASSWORD
# (or ~/.pgpass), S3 credentials from the AWS_* variables or the machine's role. A URI that embeds a
# password is refused. Runs point at the server with MLFLOW_TRACKING_URI=http://HOST:PORT or
# `--tracking-uri http://HOST:PORT`; artifacts then travel through the server (mlflow-artifacts:/),
# so training nodes need no S3 credentials of their own.
set -euo pipefail

die() { echo "run_server.sh: $*" >&2; exit 2; }

backend="${MLFLOW_BACKEND_STORE_URI:-}"
artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-}"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
allowed_hosts="${MLFLOW_ALLOWED_HOSTS:-}"
workers="${MLFLOW_WORKERS:-4}"
dry_run=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --backend-store-uri) backend="${2:?}"; shift 2 ;;
        --artifacts-destination) artifacts="${2:?}"; shift 2 ;;
        --host) host="${2:?}"; shift 2 ;;
        --port) port="${2:?}"; shift 2 ;;
        --allowed-hosts) allowed_hosts="${2:?}"; shift 2 ;;
        --workers) workers="${2:?}"; shift 2 ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

[[ -n "$backend" ]] || die "no backend store: set MLFLOW_BACKEND_STORE_URI or --backend-store-uri (postgresql://user@host:5432/db)"
[[ -n "$artifacts" ]] || die "no artifact destination: set MLFLOW_ARTIFACTS_DESTINATION or --artifacts-destination (s3://bucket/prefix)"
case "$backend" in
    postgresql://*|postgresql+*://*|sqlite:///*|mysql://*|mysql+*://*) ;;
    *) die "backend store '$backend' is not a SQL URI (postgresql://..., or sqlite:///... for a trial)" ;;
esac
# user:password@ in the URI would be visible in `ps` and in logs.
if [[ "$backend" =~ ^[a-z0-9+]+://[^/@]*:[^/@]*@ ]]; then
    die "the backend URI embeds a password; drop it from the URI and export PGPASSWORD (or use ~/.pgpass)"
fi
[[ "$port" =~ ^[0-9]+$ ]] || die "port '$port' is not a number"
case "$host" in
    127.0.0.1|localhost|::1) ;;
    *) [[ -n "$allowed_hosts" ]] || die "--host $host exposes the server beyond loopback: also give --allowed-hosts (the Host headers clients will use, e.g. 'mlflow.example.com:5000,localhost:*')" ;;
esac

cmd=(mlflow server
     --backend-store-uri "$backend"
     --artifacts-destination "$artifacts"
     --serve-artifacts
     --host "$host"
     --port "$port"
     --workers "$workers")
[[ -n "$allowed_hosts" ]] && cmd+=(--allowed-hosts "$allowed_hosts")

if [[ "$dry_run" == 1 ]]; then
    printf '%q ' "${cmd[@]}"; echo
    exit 0
fi
exec "${cmd[@]}"
