#!/usr/bin/env bash
# Start the local database servers the tests use, if they are not already running.
# PostgreSQL and MariaDB run on this machine kind from Debian's packages.
set -uo pipefail

wait_for() {  # name, probe command; bounded wait for a ready signal
  local name=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then echo "$name: ready"; return 0; fi
    sleep 0.5
  done
  echo "$name: not ready after 30 s" >&2
  return 1
}

if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
  fi
  wait_for postgresql pg_isready -h 127.0.0.1 -p 5432 -q || exit 1
else
  echo "postgresql: client tools not installed; PostgreSQL tests will be skipped" >&2
fi

if command -v mariadb-admin >/dev/null 2>&1; then
  if ! mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
  wait_for mariadb mariadb-admin -h 127.0.0.1 -P 3306 -u root ping || exit 1
else
  echo "mariadb: client tools not installed; MariaDB tests will be skipped" >&2
fi

# etcd-server: the etcd comparison benchmark starts its own etcd on loopback (bench/bench_etcd.py);
# without it that benchmark reports itself skipped.
if ! command -v etcd >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  { timeout 300 apt-get install -y -q etcd-server >/dev/null 2>&1 \
    || { timeout 300 apt-get update -q >/dev/null 2>&1 \
         && timeout 300 apt-get install -y -q etcd-server >/dev/null 2>&1; }; } \
    || echo "etcd-server: could not be installed; the etcd benchmark will be skipped" >&2
fi
command -v etcd >/dev/null 2>&1 && echo "etcd: $(etcd --version | head -1)"

# chromium: the dashboard tests drive Debian's headless Chromium with Playwright
# (tests/integration/admin/test_dashboard.py); without it they report themselves skipped.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  { timeout 600 apt-get install -y -q chromium >/dev/null 2>&1 \
    || { timeout 300 apt-get update -q >/dev/null 2>&1 \
         && timeout 600 apt-get install -y -q chromium >/dev/null 2>&1; }; } \
    || echo "chromium: could not be installed; the dashboard tests will be skipped" >&2
fi
command -v chromium >/dev/null 2>&1 && echo "chromium: $(chromium --version 2>/dev/null | head -1)"
exit 0
