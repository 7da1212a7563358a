#!/usr/bin/env bash
# Prepare the machine services that the test suite needs, as CI does before `make test`:
#   - PostgreSQL on 127.0.0.1:5432, started with pg_ctlcluster when it is down;
#   - Debian's prometheus (promtool and the server), prometheus-alertmanager and chromium, installed
#     with apt-get when their commands are missing.
# Nothing is stopped: the tests start their own Prometheus and Alertmanager on free loopback ports,
# so a service that a package's install starts is left alone.
set -euo pipefail

clusters_dir=${PG_CLUSTERS_DIR:-/etc/postgresql}

# The Debian packages whose commands are missing, one name a line.
missing_packages() {
  command -v promtool >/dev/null 2>&1 || echo prometheus
  command -v prometheus-alertmanager >/dev/null 2>&1 || echo prometheus-alertmanager
  command -v chromium >/dev/null 2>&1 || echo chromium
  return 0
}

postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "PostgreSQL: running"
    return 0
  fi
  local cluster
  cluster=$(ls "$clusters_dir" 2>/dev/null | head -n1 || true)
  if [ -z "$cluster" ]; then
    echo "PostgreSQL: not running and no cluster under $clusters_dir" >&2
    return 1
  fi
  echo "PostgreSQL: starting cluster $cluster"
  pg_ctlcluster --skip-systemctl-redirect "$cluster" main start
  for _ in $(seq 60); do
    pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && return 0
    sleep 1
  done
  echo "PostgreSQL: did not accept connections after start" >&2
  return 1
}

packages() {
  local missing
  missing=$(missing_packages | tr '\n' ' ')
  missing=${missing% }
  if [ -z "$missing" ]; then
    echo "Debian packages: all present"
    return 0
  fi
  echo "Debian packages: installing $missing"
  apt-get update -qq
  # shellcheck disable=SC2086 # one word a package
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
  local still
  still=$(missing_packages | tr '\n' ' ')
  if [ -n "${still% }" ]; then
    # Not fatal here: with MLOBS_REQUIRE_SERVICES=1 each test that needs one fails and names it.
    echo "Debian packages: commands still missing after install: $still" >&2
  fi
  return 0
}

postgres
packages
