#!/usr/bin/env bash
# Create the base images mlship's tests need, without any container registry.
#
# There is no registry to pull from on the CI machine, so we debootstrap a Debian
# rootfs, add the host CA bundle (HTTPS from inside containers needs it), and
# `docker import` it. Images that already exist are skipped, so this is cheap to
# re-run. Users with a registry never need this: they use the real upstream tags.
#
#   mlship-local/debian:bookworm        minimal Debian + CA bundle
#   mlship-local/debian:bookworm-slim   the same, "slim" the way the official -slim images are
#                                       (no docs, manuals or translations)
#   mlship-local/cpython-build:3.11     data only: CPython 3.11 built from source under
#                                       /usr/local, as the official python images build it
#                                       (local-images/cpython; about 3 minutes on 2 cores)
#   mlship-local/python:3.11-slim       debian:bookworm-slim + that CPython + pip, made the way
#                                       python:3.11-slim is (local-images/python-slim)
#   mlship-local/aws-cli:1              the AWS CLI (PyPI) for `data push`'s fetch container
#   mlship-local/elasticmq:1.6          ElasticMQ (the SQS-compatible server of the local stack's
#                                       `queue:`), its jars from Maven Central, Debian's Java 17
#                                       (local-images/elasticmq; about 2 minutes)
#   mlship-local/prometheus:2.42        Debian's Prometheus as prom/prometheus runs it (monitoring)
#   mlship-local/nginx-exporter:0.11    Debian's NGINX exporter as nginx/nginx-prometheus-exporter
#   mlship-local/cadvisor:0.49          the cAdvisor library behind /metrics, built with this
#                                       machine's Go from local-images/cadvisor (first time: a
#                                       few minutes of module downloads and compiling)
#
# Every image carries the recipe version it was built with; an image from an older
# recipe is rebuilt (bump RECIPE when what an image contains changes).
set -euo pipefail

RECIPE=3

SUITE=${MLSHIP_DEBIAN_SUITE:-bookworm}
MIRROR=${MLSHIP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${MLSHIP_ROOTFS_DIR:-/var/tmp/mlship-rootfs}
CA=/etc/ssl/certs/ca-certificates.crt

# An image exists and was built by this recipe.
have() {
  [[ $(docker image inspect --format '{{index .Config.Labels "dev.mlship.base-recipe"}}' "$1" 2>/dev/null) == "$RECIPE" ]]
}

make_rootfs() { # dir, [packages]
  local dir=$1 pkgs=${2:-}
  rm -rf "$dir"
  mkdir -p "$dir"
  debootstrap --variant=minbase ${pkgs:+--include="$pkgs"} "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1 || {
    echo "debootstrap failed; last lines of $dir.log:" >&2
    tail -n 20 "$dir.log" >&2
    exit 1
  }
  # Host CA bundle: the machine's HTTPS egress may be re-signed by a local CA.
  if [[ -f $CA ]]; then
    mkdir -p "$dir/etc/ssl/certs"
    cp "$CA" "$dir/etc/ssl/certs/ca-certificates.crt"
  fi
  # Keep images small: no apt lists, docs or caches.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
  echo "deb $MIRROR $SUITE main" >"$dir/etc/apt/sources.list"
}

import_rootfs() { # dir, tag, extra --change args...
  local dir=$1 tag=$2
  shift 2
  tar -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
  echo "created $tag" >&2
}

ENV_CHANGES=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV LANG=C.UTF-8'
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt'
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt'
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'
  --change 'CMD ["bash"]'
  --change "LABEL dev.mlship.base-recipe=$RECIPE"
)

# Like the official Debian images: apt removes downloaded .deb archives after every install
# (their /etc/apt/apt.conf.d/docker-clean), so a layer that installs packages keeps no archives.
apt_clean() { # dir
  cat >"$1/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
}

# Like the official -slim images: documentation, manuals and translations are not installed,
# neither now nor by later apt installs (dpkg path excludes), copyright files excepted.
slimify() { # dir
  cat >"$1/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
  rm -rf "$1"/usr/share/groff/* "$1"/usr/share/info/* "$1"/usr/share/linda/* "$1"/usr/share/lintian/* "$1"/usr/share/locale/*
}

if ! have "mlship-local/debian:$SUITE"; then
  make_rootfs "$WORK/debian" "ca-certificates"
  apt_clean "$WORK/debian"
  import_rootfs "$WORK/debian" "mlship-local/debian:$SUITE" "${ENV_CHANGES[@]}"
  rm -rf "$WORK/debian"
else
  echo "mlship-local/debian:$SUITE exists" >&2
fi

if ! have "mlship-local/debian:$SUITE-slim"; then
  make_rootfs "$WORK/debian-slim"
  apt_clean "$WORK/debian-slim"
  slimify "$WORK/debian-slim"
  import_rootfs "$WORK/debian-slim" "mlship-local/debian:$SUITE-slim" "${ENV_CHANGES[@]}"
  rm -rf "$WORK/debian-slim"
else
  echo "mlship-local/debian:$SUITE-slim exists" >&2
fi

# Images built with docker build on the Debian image (apt works from containers): CPython,
# then the python, nginx, postgres and moto stand-ins.
build_local() { # tag, dir, [base image: the Debian image by default]
  if have "$1"; then
    echo "$1 exists" >&2
    return
  fi
  docker build -q -t "$1" --build-arg "BASE=${3:-mlship-local/debian:$SUITE}" \
    --label "dev.mlship.base-recipe=$RECIPE" "$2" >/dev/null
  echo "created $1" >&2
}
HERE=$(cd "$(dirname "$0")" && pwd)
build_local mlship-local/cpython-build:3.11 "$HERE/local-images/cpython"
# CPython comes from mlship-local/cpython-build:3.11 (the Dockerfile's default CPYTHON).
build_local mlship-local/python:3.11-slim "$HERE/local-images/python-slim" "mlship-local/debian:$SUITE-slim"
# An NGINX image from before njs was added is rebuilt (its own recipe number: no other image
# is rebuilt for it).
NGINX_RECIPE=2
if [[ $(docker image inspect --format '{{index .Config.Labels "dev.mlship.nginx-recipe"}}' mlship-local/nginx:1.22 2>/dev/null) != "$NGINX_RECIPE" ]]; then
  docker build -q -t mlship-local/nginx:1.22 --build-arg "BASE=mlship-local/debian:$SUITE" \
    --label "dev.mlship.base-recipe=$RECIPE" --label "dev.mlship.nginx-recipe=$NGINX_RECIPE" \
    "$HERE/local-images/nginx" >/dev/null
  echo "created mlship-local/nginx:1.22 (with njs)" >&2
else
  echo "mlship-local/nginx:1.22 exists" >&2
fi
build_local mlship-local/postgres:15 "$HERE/local-images/postgres"
build_local mlship-local/moto:5.2 "$HERE/local-images/moto" mlship-local/python:3.11-slim
build_local mlship-local/aws-cli:1 "$HERE/local-images/aws-cli" mlship-local/python:3.11-slim
build_local mlship-local/elasticmq:1.6 "$HERE/local-images/elasticmq"
build_local mlship-local/prometheus:2.42 "$HERE/local-images/prometheus"
build_local mlship-local/nginx-exporter:0.11 "$HERE/local-images/nginx-exporter"
# Its own recipe number (a Go build takes minutes: not redone when another image's recipe changes).
CADVISOR_RECIPE=2
if [[ $(docker image inspect --format '{{index .Config.Labels "dev.mlship.cadvisor-recipe"}}' mlship-local/cadvisor:0.49 2>/dev/null) != "$CADVISOR_RECIPE" ]]; then
  GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
  [[ -x $GO ]] || { echo "mlship-local/cadvisor:0.49 needs Go (set GO=/path/to/go)" >&2; exit 1; }
  (cd "$HERE/local-images/cadvisor" && CGO_ENABLED=0 "$GO" build -trimpath -o cadvisor .)
  docker build -q -t mlship-local/cadvisor:0.49 --build-arg "BASE=mlship-local/debian:$SUITE" \
    --label "dev.mlship.base-recipe=$RECIPE" --label "dev.mlship.cadvisor-recipe=$CADVISOR_RECIPE" \
    "$HERE/local-images/cadvisor" >/dev/null
  echo "created mlship-local/cadvisor:0.49" >&2
  rm -f "$HERE/local-images/cadvisor/cadvisor"
else
  echo "mlship-local/cadvisor:0.49 exists" >&2
fi
