# fedns container image: docker build -t ghcr.io/fedns/fedns:0.1.0 .
# Build stage: compile with the dev dependencies and the toolchain of the batched UDP addon
# (native/), then stage the runtime (scripts/stage-runtime.sh, the same script
# test/deploy/image.test.ts runs) into /app.
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test/support ./test/support
COPY benchmarks ./benchmarks
COPY config ./config
COPY scripts ./scripts
COPY native ./native
# The image's Node.js headers (no download); the image always ships the addon, so a failed build fails here.
RUN npm_config_nodedir=/usr/local npm run build && test -f native/build/Release/fedns_udp.node && scripts/stage-runtime.sh /app

# Runtime: Node.js 24 (LTS), the staged directory only, as a non-root user. fedns writes nothing
# to its own files, so a read-only root file system works (the serial file, if configured, goes to
# a mounted volume: /var/lib/fedns in config/deploy/fedns.yaml).
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER 65532:65532
EXPOSE 1053/udp 1053/tcp 9153/tcp
# Node.js 24's V8 sizes its young generation from the memory limit: 128 MiB (64 MiB semi-spaces)
# from a 4 GiB limit. fedns's garbage is short-lived either way, and at 16 MiB, what Node.js 20
# used there, a 100,000-service federation measured 330-339 MiB after sync instead of 418-423.
# At 1 GiB V8 picks 16 MiB itself; in a 512 MiB pod it picks 1 MiB, and the flag lets the young
# generation take up to 30 MiB more (README, "Memory"). V8 reads this flag only when it starts,
# so it is here rather than set by fedns itself like the heap growth.
ENTRYPOINT ["node", "--max-semi-space-size=16", "/app/dist/src/cli.js"]
CMD ["serve", "--config", "/app/config/fedns.yaml"]
