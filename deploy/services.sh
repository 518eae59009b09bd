#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ are installed and running on this machine
# (Debian or Ubuntu). Installs them from the distribution's packages when absent.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_install=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_install+=(postgresql)
command -v rabbitmq-server >/dev/null 2>&1 || need_install+=(rabbitmq-server)
if [ ${#need_install[@]} -gt 0 ]; then
  echo "installing ${need_install[*]} from the distribution's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  echo "starting PostgreSQL" >&2
  cluster_version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start || true
  for _ in $(seq 1 60); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
# The hub connects as postgres over TCP on one machine: allow it without a password
# only when no password is set up (a fresh install), never on a configured server.
if ! psql -h 127.0.0.1 -U postgres -c 'select 1' >/dev/null 2>&1; then
  hba=$(as_root su postgres -c "psql -tAc 'show hba_file'")
  if ! as_root grep -q "hub: local trust" "$hba"; then
    echo "allowing local trust for user postgres on 127.0.0.1 (hub: local trust)" >&2
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust # hub: local trust\nhost all postgres ::1/128 trust # hub: local trust' "$hba"
    as_root su postgres -c "psql -qc 'select pg_reload_conf()'" >/dev/null
  fi
fi

rabbit_up() { as_root rabbitmqctl -q status >/dev/null 2>&1 || as_root rabbitmq-diagnostics -q check_running >/dev/null 2>&1; }
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "starting RabbitMQ" >&2
  as_root rabbitmq-server -detached || true
  for _ in $(seq 1 90); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
  (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || { echo "RabbitMQ did not start" >&2; exit 1; }
fi
as_root rabbitmqctl -q await_startup >/dev/null 2>&1 || true
echo "PostgreSQL and RabbitMQ are running" >&2
