#!/usr/bin/env bash
# Run the whole test suite. The tests start their own redis-server (installing it with
# apt-get when absent) and use RabbitMQ on 127.0.0.1:5672 (started / installed when absent),
# each session in a vhost of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# The layer contract (ARCHITECTURE.md, [tool.importlinter] in pyproject.toml): a cycle or an
# upward import fails the test command before any test runs.  Then the linter.
if ! out=$(.venv/bin/lint-imports --no-cache 2>&1); then
    printf '%s\n' "$out" | sed -n '/Contracts/,$p' >&2
    exit 1
fi
echo "layer contract: kept ($(printf '%s\n' "$out" | grep -c ' KEPT$') contracts)" >&2
.venv/bin/ruff check -q celerytool tests benchmarks
# Types: mypy with the settings of [tool.mypy] (pyproject.toml) must find nothing in celerytool/.
if ! out=$(.venv/bin/mypy 2>&1); then
    printf '%s\n' "$out" >&2
    exit 1
fi
echo "types: $(printf '%s\n' "$out" | tail -1)" >&2
export C_FORCE_ROOT=1
# Test files run in parallel (pytest-xdist; most of the time goes to waiting for real workers and
# servers to start); CELERYTOOL_TEST_JOBS=0 runs them one after the other.
exec .venv/bin/python -m pytest -q -n "${CELERYTOOL_TEST_JOBS:-4}" --dist loadfile "$@"
