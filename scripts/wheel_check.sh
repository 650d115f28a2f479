#!/usr/bin/env bash
# The installed package works outside a checkout: build the wheel, install it in a fresh
# virtualenv, and run a few commands from it (in an empty directory, so nothing of the
# checkout is importable) against a private redis-server on a free port.
# Used by .ci/run after the test command; run it by hand with `bash scripts/wheel_check.sh`.
# With no PYTHON given, it runs once with python3 and once more with Python 3.10 (the oldest
# supported: no tomllib, no strict base64) when one is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3 bash "$0"
    for candidate in python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do
        if "$candidate" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
            exec env PYTHON="$candidate" bash "$0"
        fi
    done
    exit 0
fi
WORK=$(mktemp -d)
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "wheel check: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

"$PYTHON" -m pip wheel -q --no-deps -w "$WORK/dist" "$ROOT" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "building the wheel"; }
WHEEL=$(ls "$WORK"/dist/celerytool-*.whl)
say "built $(basename "$WHEEL") ($("$PYTHON" -V 2>&1))"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q "$WHEEL" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; fail "installing the wheel"; }

PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REDIS=$(command -v redis-server || echo /usr/bin/redis-server)
mkdir -p "$WORK/redis" "$WORK/empty"
"$REDIS" --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/redis" --daemonize no \
    --logfile "$WORK/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
    "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
    sleep 0.1
done

cd "$WORK/empty"
export CELERY_BROKER_URL="redis://127.0.0.1:$PORT/0" CELERYTOOL_CONFIG="$WORK/config.toml" C_FORCE_ROOT=1
unset CELERY_RESULT_BACKEND CELERYTOOL_PROFILE CELERYTOOL_OUTPUT PYTHONPATH
BIN="$WORK/venv/bin"
where=$("$BIN/python" -c 'import celerytool, os; print(os.path.dirname(celerytool.__file__))')
case "$where" in "$WORK/venv/"*) ;; *) fail "celerytool imported from $where, not the virtualenv";; esac
"$BIN/celerytool" --version >/dev/null || fail "--version"
"$BIN/celerytool" --help | grep -q "profiles" || fail "--help lists no profiles command"
id=$("$BIN/celerytool" send tasks.add 2 3) || fail "send"
"$BIN/celerytool" queues -o json | grep -q '"messages": *1' || fail "queues shows no message"
"$BIN/celerytool" peek celery -o ndjson | grep -q "$id" || fail "peek does not show the sent task"
rc=0; out=$("$BIN/celerytool" result "$id" -o json) || rc=$?
[ "$rc" = 3 ] && grep -q PENDING <<<"$out" || fail "result (exit $rc; 3 = not ready expected)"
printf '[profiles.default]\nbroker = "redis://127.0.0.1:%s/1"\n' "$PORT" >"$CELERYTOOL_CONFIG"
unset CELERY_BROKER_URL
"$BIN/celerytool" queues -o json | grep -q '^\[\]' || fail "the default profile (db 1) was not used"
"$BIN/celerytool" purge celery -b "redis://127.0.0.1:$PORT/0" --yes 2>/dev/null || fail "purge"
_CELERYTOOL_COMPLETE=bash_source "$BIN/celerytool" | grep -q _celerytool_completion || fail "completion"
# the manual comes with the wheel: the same pages as docs/, the man page where man finds it
for page in "$ROOT"/docs/*.md; do
    name=$(basename "$page" .md)
    [ "$name" = README ] && continue
    "$BIN/celerytool" help "$name" | cmp -s - "$page" || fail "celerytool help $name differs from docs/$name.md"
done
"$BIN/celerytool" help | grep -q "connection" || fail "celerytool help lists no connection page"
"$BIN/celerytool" help --man | cmp -s - "$ROOT/man/celerytool.1" || fail "celerytool help --man differs from man/celerytool.1"
cmp -s "$WORK/venv/share/man/man1/celerytool.1" "$ROOT/man/celerytool.1" || fail "the man page is not installed in share/man/man1"
if command -v man >/dev/null 2>&1; then
    found=$(PATH="$BIN:$PATH" man -w celerytool 2>/dev/null) || fail "man celerytool finds no page"
    [ "$found" = "$WORK/venv/share/man/man1/celerytool.1" ] || fail "man celerytool shows $found"
fi
say "ok: the wheel installed in a fresh virtualenv ran send, queues, peek, result, a profile, purge, help, the man page"
