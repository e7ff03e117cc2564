# One image with every binary; docker-compose picks the command per service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/api /src/target/release/ingestor \
     /src/target/release/replier /src/target/release/migrations \
     /src/target/release/ayrshare-sim /usr/local/bin/
ENV LOG_FORMAT=json
