# scimlab in a slim image: the `scimlab` binary and the repository's scenarios at /app.
#   docker build -t scimlab .
#   docker run --rm scimlab conformance https://scim.example.com/v2 --token "$TOKEN"
# scripts/check-deploy.sh runs the build stage's command outside Docker and checks that
# everything the final stage copies exists.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p harness

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/scimlab /usr/local/bin/scimlab
COPY scenarios /app/scenarios
WORKDIR /app
# Reports go to /app/reports: mount a volume there to keep them.
RUN mkdir -p /app/reports && chown 65532:65532 /app/reports
USER 65532:65532
ENTRYPOINT ["scimlab"]
CMD ["--help"]
