# A local stand-in for the full official python:3.11 image, made the way it is made:
# debian:bookworm, then buildpack-deps:bookworm (its curl and scm layers, then compilers
# and the common -dev libraries), then python:3.11's own layers: its extra -dev packages,
# CPython built from source under /usr/local (not stripped), pip and setuptools.
# No registry is reachable here, so it is built from the local images of
# scripts/local-base-images.sh; CPython comes from mlship-local/cpython-build:3.11, the
# same build the slim stand-in copies (stripped) from. As in the official Debian image,
# apt's .deb archives and package caches go as each install ends (docker-clean).
# bench/optimize/run.mjs builds it when it is missing.
ARG BASE=mlship-local/debian:bookworm
ARG CPYTHON=mlship-local/cpython-build:3.11
FROM ${CPYTHON} AS cpython
FROM ${BASE} AS base
FROM base
# buildpack-deps:bookworm-curl
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl gnupg netbase sq wget \
    && rm -rf /var/lib/apt/lists/*
# buildpack-deps:bookworm-scm
RUN apt-get update && apt-get install -y --no-install-recommends \
        git git-lfs mercurial openssh-client subversion procps \
    && rm -rf /var/lib/apt/lists/*
# buildpack-deps:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        autoconf automake bzip2 default-libmysqlclient-dev dpkg-dev file g++ gcc imagemagick \
        libbz2-dev libc6-dev libcurl4-openssl-dev libdb-dev libevent-dev libffi-dev libgdbm-dev \
        libglib2.0-dev libgmp-dev libjpeg-dev libkrb5-dev liblzma-dev libmagickcore-dev \
        libmagickwand-dev libmaxminddb-dev libncurses5-dev libncursesw5-dev libpng-dev libpq-dev \
        libreadline-dev libsqlite3-dev libssl-dev libtool libwebp-dev libxml2-dev libxslt-dev \
        libyaml-dev make patch unzip xz-utils zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
# python:3.11 from here on
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
RUN apt-get update && apt-get install -y --no-install-recommends libbluetooth-dev tk-dev uuid-dev \
    && rm -rf /var/lib/apt/lists/*
# The base's CA bundle: a package's trigger regenerated it without the CA that re-signs
# this machine's HTTPS egress.
COPY --from=base /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=cpython /full/usr/local/ /usr/local/
RUN ldconfig && python3 --version
ARG PIP_VERSION=24.0
ARG SETUPTOOLS_VERSION=65.5.1
RUN set -eux; \
    wheel="$(echo /usr/local/lib/python3.11/ensurepip/_bundled/pip-*.whl)"; \
    PYTHONDONTWRITEBYTECODE=1 python3 "$wheel/pip" install --disable-pip-version-check \
        --no-cache-dir --no-compile "pip==$PIP_VERSION" "setuptools==$SETUPTOOLS_VERSION"; \
    pip --version
CMD ["python3"]
LABEL dev.mlship.stand-in="python:3.11 (debian:bookworm + buildpack-deps:bookworm + CPython), built by bench/optimize/run.mjs"
