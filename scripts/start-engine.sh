#!/usr/bin/env bash
# Start a Docker engine (and optionally a local registry) when none is reachable.
# Used by .ci/run and by developers on machines without a running engine.
# Idempotent: does nothing when the engine already answers.
set -euo pipefail

SOCK=/var/run/docker.sock
LOG_DIR=${MLSHIP_ENGINE_LOG_DIR:-/tmp/mlship-engine}
mkdir -p "$LOG_DIR"

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! engine_up; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "dockerd is not installed: apt-get install -y docker.io" >&2
    exit 3
  fi
  echo "starting dockerd (log: $LOG_DIR/dockerd.log)" >&2
  nohup dockerd --host "unix://$SOCK" >"$LOG_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do
    engine_up && break
    sleep 1
  done
  if ! engine_up; then
    echo "dockerd did not come up within 60 s; last log lines:" >&2
    tail -n 30 "$LOG_DIR/dockerd.log" >&2 || true
    exit 3
  fi
fi
echo "docker engine $(docker version --format '{{.Server.Version}}') is up" >&2

# A local registry for push tests, with its own config (never the system one).
if [[ "${MLSHIP_START_REGISTRY:-1}" == "1" ]] && command -v docker-registry >/dev/null 2>&1; then
  REG_PORT=${MLSHIP_REGISTRY_PORT:-5000}
  if ! curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null 2>&1; then
    REG_DIR=${MLSHIP_REGISTRY_DIR:-/tmp/mlship-registry}
    mkdir -p "$REG_DIR/data"
    cat >"$REG_DIR/config.yml" <<CFG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REG_PORT
CFG
    nohup docker-registry serve "$REG_DIR/config.yml" >"$LOG_DIR/registry.log" 2>&1 &
    for _ in $(seq 1 30); do
      curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  if curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null 2>&1; then
    echo "local registry is up on 127.0.0.1:$REG_PORT" >&2
  else
    echo "warning: local registry did not start; see $LOG_DIR/registry.log" >&2
  fi
fi
