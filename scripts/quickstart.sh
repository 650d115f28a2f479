#!/usr/bin/env bash
# Install celerytool into .venv and show it working against a real local Redis:
# starts redis-server on 127.0.0.1:6379 if nothing answers there (installing it with
# apt-get when absent), sends three demo tasks to queue "celerytool-demo" in database 15,
# shows them, then removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
CT=.venv/bin/celerytool
PY=.venv/bin/python
BROKER=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}

if ! $PY -c "import redis,sys; redis.Redis.from_url('$BROKER', socket_connect_timeout=1).ping()" 2>/dev/null; then
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "installing redis-server with apt-get" >&2
        as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q redis-server >/dev/null
    fi
    echo "starting redis-server on 127.0.0.1:6379" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
    up=
    for _ in $(seq 50); do $PY -c "import redis; redis.Redis(socket_connect_timeout=1).ping()" 2>/dev/null && up=1 && break; sleep 0.1; done
    if [ -z "$up" ]; then
        echo "quickstart: no Redis answers on 127.0.0.1:6379 (something else holds the port?); set CELERY_BROKER_URL to a Redis of yours" >&2
        exit 1
    fi
fi

export CELERY_BROKER_URL=$BROKER
echo "+ sending three demo tasks with Celery's own API to $BROKER, queue celerytool-demo" >&2
$PY - <<'PY'
import os
from celery import Celery
app = Celery(broker=os.environ["CELERY_BROKER_URL"])
app.send_task("demo.add", args=(2, 3), queue="celerytool-demo")
app.send_task("demo.report", kwargs={"day": "2026-11-23"}, queue="celerytool-demo", priority=9, countdown=60)
app.send_task("demo.resize", args=("cat.png", 640), queue="celerytool-demo", serializer="pickle", compression="zlib")
PY
set -x
$CT --version
$CT queues celerytool-demo
$CT peek celerytool-demo
$CT peek celerytool-demo -n 1 -o json
set +x
$PY -c "import redis,os; r=redis.Redis.from_url(os.environ['CELERY_BROKER_URL']); r.delete(*[k for k in r.scan_iter('celerytool-demo*')]); r.delete('_kombu.binding.celerytool-demo', '_kombu.binding_permanent.celerytool-demo')"
echo "demo queue removed. celerytool is installed in .venv: try .venv/bin/celerytool --help" >&2
