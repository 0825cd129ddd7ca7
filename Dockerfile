# ldzmask for batch jobs on a cluster (README "Big batches"): `docker build -t ldzmask .`
# The image runs the CLI (`ldzmask segment …`); weights and images come from mounted volumes.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ldzmask

FROM debian:bookworm-slim
# Vulkan loader and Mesa's drivers: a GPU through wgpu when the node has one, lavapipe (CPU)
# otherwise; the CPU backend needs nothing more.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 mesa-vulkan-drivers ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ldzmask /usr/local/bin/ldzmask
ENV LDZMASK_DEVICE=auto
ENTRYPOINT ["ldzmask"]
