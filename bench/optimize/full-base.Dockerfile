# A local stand-in for the full official python:3.11 image, which is
# buildpack-deps:bookworm (its curl and scm layers, then compilers and the common
# -dev libraries) plus Python. No registry is reachable here, so it is built on the
# local slim image with the package list of docker-library/buildpack-deps for
# bookworm. apt's .deb archives and package caches (/var/cache/apt/*.bin) go as each
# install ends, as the official Debian image's apt configuration (docker-clean) does;
# the local slim image keeps its own .deb archives.
# bench/optimize/run.mjs builds it when it is missing.
ARG BASE=mlship-local/python:3.11-slim
FROM ${BASE}
# The full image is not slim: documentation, manuals and translations are installed.
RUN rm -f /etc/dpkg/dpkg.cfg.d/docker-slim
# buildpack-deps:bookworm-curl
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates curl gnupg netbase sq wget \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
# buildpack-deps:bookworm-scm
RUN apt-get update && apt-get install -y --no-install-recommends \
        git git-lfs mercurial openssh-client subversion procps \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
# buildpack-deps:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends \
        autoconf automake bzip2 default-libmysqlclient-dev dpkg-dev file g++ gcc imagemagick \
        libbz2-dev libc6-dev libcurl4-openssl-dev libdb-dev libevent-dev libffi-dev libgdbm-dev \
        libglib2.0-dev libgmp-dev libjpeg-dev libkrb5-dev liblzma-dev libmagickcore-dev \
        libmagickwand-dev libmaxminddb-dev libncurses5-dev libncursesw5-dev libpng-dev libpq-dev \
        libreadline-dev libsqlite3-dev libssl-dev libtool libwebp-dev libxml2-dev libxslt-dev \
        libyaml-dev make patch unzip xz-utils zlib1g-dev \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
# + Python: the official image's own build has its headers (Python.h) for C extensions,
# and deletes its static libpython*.a.
RUN apt-get update && apt-get install -y --no-install-recommends libpython3.11-dev \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin \
    && find /usr/lib -name 'libpython*.a' -delete
# The host CA bundle, as in the local base images: a package's trigger may have
# regenerated the bundle without the CA that re-signs this machine's HTTPS egress.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
LABEL dev.mlship.stand-in="python:3.11 (buildpack-deps:bookworm + Python), built by bench/optimize/run.mjs"
