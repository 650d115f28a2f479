#!/usr/bin/env bash
# Run the whole test suite. The tests start their own redis-server (installing it with
# apt-get when absent) and use RabbitMQ on 127.0.0.1:5672 (started / installed when absent),
# each session in a vhost of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export C_FORCE_ROOT=1
exec .venv/bin/python -m pytest -q "$@"
