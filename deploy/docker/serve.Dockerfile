# busca-serve and the query component, for deploy/k8s/serve.yaml. Build from
# the repository root, on a machine with internet:
#
#   docker build -f deploy/docker/serve.Dockerfile -t buscaescenas/serve:0.1.0 .
#
# Queries are encoded on the CPU (one short text or one image per request);
# the image holds the CPU build of ONNX Runtime.
FROM debian:bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl build-essential clang libclang-dev pkg-config \
        libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
        libavfilter-dev libavdevice-dev libswresample-dev \
    && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0 \
    --target wasm32-wasip2
ENV PATH=/root/.cargo/bin:$PATH CARGO_TARGET_DIR=/src/target
WORKDIR /src
COPY . .
RUN scripts/build-component.sh \
    && cargo build --release --locked -p busca-host --bin busca-serve

FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/onnxruntime \
    && /opt/onnxruntime/bin/pip install --no-cache-dir onnxruntime==1.32.0 \
    && ln -s /opt/onnxruntime/lib/python3.11/site-packages/onnxruntime/capi /opt/onnxruntime/capi \
    && test -f /opt/onnxruntime/capi/libonnxruntime.so.1.32.0
ENV ORT_DYLIB_PATH=/opt/onnxruntime/capi/libonnxruntime.so.1.32.0
COPY --from=build /src/target/release/busca-serve /usr/local/bin/busca-serve
COPY --from=build /src/query-component/dist/query_component.wasm /opt/buscaescenas/query_component.wasm
RUN mkdir -p /var/cache/buscaescenas && chown 65532:65532 /var/cache/buscaescenas
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["busca-serve"]
