# The entangle agent image: `entangle agent expose|connect|api-proxy|relay`, `entangle token ...`.
# The rendered Deployments and sidecars (lib/render/agent.ts) run it as `command: ["entangle"]`,
# user 65532, with a read-only root filesystem and the health/metrics endpoint on port 8089.
#
#   docker build -t ghcr.io/entangle-ts/entangle:0.1.0 .
#
# The code is TypeScript run by Node 22's built-in type stripping: no compile step.

FROM node:22-bookworm-slim AS deps
WORKDIR /app
# patches/ before `npm ci`: the @libp2p/tcp patch (corked writes) is part of the tunnel's speed.
COPY package.json package-lock.json ./
COPY patches/ ./patches/
# --ignore-scripts: the only install scripts among the runtime dependencies are esbuild's (used
# by `pepr build`, never by the agent) and the `node` package's, which downloads a second 120 MB
# Node binary for machines whose Node is older than 22. This image has Node 22: skip them and run
# our own postinstall (patch-package) explicitly. Then drop what the agent never loads: `node`,
# `pepr` (the module runs in Pepr's controller image, not this one; -190 MB of build tooling)
# and patch-package itself. `npm uninstall` leaves the patched @libp2p/tcp as it is.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm run postinstall \
 && npm uninstall --omit=dev --ignore-scripts --no-audit --no-fund node pepr patch-package

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Everything stays owned by root and is only read at run time: fine on a read-only root filesystem.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin/ ./bin/
COPY lib/ ./lib/
# `entangle` on PATH (the shebang is `#!/usr/bin/env node`, this image's Node 22).
RUN chmod 0755 bin/entangle.js && ln -s /app/bin/entangle.js /usr/local/bin/entangle
# The same non-root user as the pods' securityContext (runAsUser/runAsGroup 65532).
USER 65532:65532
ENTRYPOINT ["entangle"]
