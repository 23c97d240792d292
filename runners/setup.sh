#!/usr/bin/env bash
# Idempotent set-up for shiftstream: apt packages where missing, a virtualenv, the pinned Python packages.
# Used by `make setup` (and so by `make demo` and `make test`). Safe to run again; it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)     # the TLS tests make a throwaway CA
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)         # the loopback test lists listening sockets
if ! command -v java >/dev/null 2>&1 || ! java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then
  need_apt+=(openjdk-17-jre-headless)
fi
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)  # compiles jobs/flink/java (the Java front)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)        # the dashboard's test: a real headless browser
need_bare=()  # without the recommended extras (the Debian prometheus package recommends node exporters)
command -v prometheus >/dev/null 2>&1 || need_bare+=(prometheus)  # the metrics test scrapes the API and the job
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_bare[@]} -gt 0 ]; then
  echo "setup: installing apt packages: ${need_apt[*]} ${need_bare[*]}"
  $SUDO apt-get update -qq
  if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  if [ ${#need_bare[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_bare[@]}" >/dev/null
  fi
fi

PY=""
for cand in python3.11 python3.12 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(0 if (3,11) <= sys.version_info[:2] <= (3,12) else 1)'; then
    PY=$cand; break
  fi
done
[ -n "$PY" ] || { echo "setup: needs Python 3.11 or 3.12 (apache-flink 2.3 has no wheel for others)" >&2; exit 1; }

stamp="$VENV/.shiftstream-installed"
want=$(cat requirements.lock setup.py | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/shiftstream" ]; then
  "$VENV/bin/python" -m shiftstream.jobs.flink.jars .jars >/dev/null   # cheap when present: only the hashes are checked
  "$VENV/bin/python" -m shiftstream.jobs.flink.front .jars >/dev/null  # compiled again only when its source changed
  exit 0
fi
[ -x "$VENV/bin/python" ] || { echo "setup: creating $VENV with $PY"; "$PY" -m venv "$VENV"; }
echo "setup: installing Python packages into $VENV (first time: a few minutes)"
"$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$VENV/bin/python" -m pip install -q -r requirements.lock
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . --config-settings editable_mode=compat
"$VENV/bin/python" -m pip check
"$VENV/bin/python" -m shiftstream.jobs.flink.jars .jars   # Kafka connector jars for the PyFlink job, sha256-pinned
"$VENV/bin/python" -m shiftstream.jobs.flink.front .jars  # the Java front (jobs/flink/java), compiled with the JDK
echo "$want" > "$stamp"
echo "setup: done"
