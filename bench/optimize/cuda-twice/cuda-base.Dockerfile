# A stand-in for nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 (no registry is reachable here):
# Debian (the local image with ca-certificates installed: an apt install then keeps the host CA
# bundle this machine needs) with the CUDA 12 runtime libraries and cuDNN where NVIDIA's image has them
# (/usr/local/cuda-12.4, on the loader's path). The libraries come from NVIDIA's own pip
# wheels, the same builds the deb packages carry, at the versions torch 2.5.1 uses, plus
# the NPP and nvJPEG libraries the real runtime image ships.
ARG PYTHON_IMAGE=mlship-local/python:3.11-slim
ARG OS_IMAGE=mlship-local/debian:bookworm
FROM ${PYTHON_IMAGE} AS wheels
RUN --mount=type=cache,id=mlship-bench-pip,target=/root/.cache/pip \
    pip install --target /w torch==2.5.1 "nvidia-npp-cu12<12.4" "nvidia-nvjpeg-cu12<12.4" \
    && mkdir -p /cuda/lib64 \
    && cp -a /w/nvidia/*/lib/*.so* /cuda/lib64/

FROM ${OS_IMAGE}
COPY --from=wheels /cuda/ /usr/local/cuda-12.4/
RUN ln -s /usr/local/cuda-12.4 /usr/local/cuda \
    && echo /usr/local/cuda/lib64 > /etc/ld.so.conf.d/cuda.conf && ldconfig
ENV CUDA_VERSION=12.4.1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
