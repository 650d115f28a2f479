# Shared by quickstart.sh and test.sh: make a virtualenv in .venv with celerytool installed.
# Installs python3 + venv with apt-get when missing (a fresh Debian machine, as root).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# On a machine just booted, unattended-upgrades may hold apt's lock: wait for it, not fail.
apt_install() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "$@" >/dev/null
}

PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "installing python3 with apt-get" >&2
    apt_install python3 python3-venv python3-pip
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
        echo "installing python3-venv with apt-get" >&2
        rm -rf .venv
        apt_install python3-venv
        "$PYTHON" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -m pip install -q -e ".[test,db]" >.venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    exit 1
fi
