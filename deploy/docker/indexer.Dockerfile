# busca-index with ONNX Runtime's CUDA provider, for the workers and the
# publish Job in deploy/k8s. Build from the repository root, on a machine
# with internet (the build downloads Rust, apt packages and the
# onnxruntime-gpu wheel; nothing is downloaded when it runs):
#
#   docker build -f deploy/docker/indexer.Dockerfile -t buscaescenas/indexer:0.1.0 .
#
# Both stages use the same Ubuntu, so the FFmpeg libraries busca-index links
# at build time are the ones it finds at run time. onnxruntime-gpu 1.32 is
# built for CUDA 12 and cuDNN 9, which this image carries; the node needs an
# NVIDIA driver for CUDA 12.8 and the NVIDIA device plugin (nvidia.com/gpu).
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl build-essential clang libclang-dev pkg-config \
        libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
        libavfilter-dev libavdevice-dev libswresample-dev \
    && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY . .
# The cuda feature compiles busca-onnx's CUDA session path (it falls back to
# the CPU, and says so, where no GPU is visible).
RUN cargo build --release --locked -p busca-indexer --features cuda --bin busca-index

FROM ${CUDA_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates ffmpeg python3-venv \
    && rm -rf /var/lib/apt/lists/*
# libonnxruntime.so with the CUDA provider, from the wheel, as scripts/setup.sh
# does for the CPU build (ort loads it at run time: ORT_DYLIB_PATH).
RUN python3 -m venv /opt/onnxruntime \
    && /opt/onnxruntime/bin/pip install --no-cache-dir onnxruntime-gpu==1.32.0 \
    && ln -s /opt/onnxruntime/lib/python3.12/site-packages/onnxruntime/capi /opt/onnxruntime/capi \
    && test -f /opt/onnxruntime/capi/libonnxruntime.so.1.32.0
ENV ORT_DYLIB_PATH=/opt/onnxruntime/capi/libonnxruntime.so.1.32.0
COPY --from=build /src/target/release/busca-index /usr/local/bin/busca-index
COPY models/README.md /usr/share/doc/buscaescenas/models.md
USER 65532:65532
ENTRYPOINT ["busca-index"]
