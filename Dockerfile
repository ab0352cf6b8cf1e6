# The entangle agent image: `entangle agent expose|connect|api-proxy|relay`, `entangle token ...`.
# The rendered Deployments and sidecars (lib/render/agent.ts) run it as `command: ["entangle"]`,
# user 65532, with a read-only root filesystem and the health/metrics endpoint on port 8089.
#
#   docker build -t ghcr.io/entangle-ts/entangle:0.1.0 .
#
# The agent is bundled from the TypeScript sources by hack/build-agent.ts (esbuild).

FROM node:22-bookworm-slim AS build
WORKDIR /src
# patches/ before `npm ci`: the libp2p patches (window updates, Noise coalescing, hole punching)
# are part of the tunnel. --ignore-scripts skips the `node` package's download of a second Node
# (this image has Node 22); esbuild's binary comes as an optional dependency, no script needed.
COPY package.json package-lock.json ./
COPY patches/ ./patches/
RUN npm ci --ignore-scripts --no-audit --no-fund && npm run postinstall
COPY bin/ ./bin/
COPY lib/ ./lib/
COPY hack/build-agent.ts ./hack/
# the agent as a few bundled files (hack/build-agent.ts): no node_modules in the image, and an
# idle agent holds ~80 MiB instead of ~136 MiB run from the TypeScript sources
RUN node hack/build-agent.ts /app

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root and is only read at run time: fine on a read-only root filesystem.
COPY --from=build /app/ ./
# `entangle` on PATH (the shebang is `#!/usr/bin/env node`, this image's Node 22).
RUN chmod 0755 entangle.mjs && ln -s /app/entangle.mjs /usr/local/bin/entangle
# The same non-root user as the pods' securityContext (runAsUser/runAsGroup 65532).
USER 65532:65532
ENTRYPOINT ["entangle"]
