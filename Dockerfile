# registry-bridge container image.
#   buildah bud -t registry-bridge:dev .     (or: docker build -t registry-bridge:dev .)
# Stage 1 compiles and bundles the TypeScript (scripts/bundle.mjs) and keeps production
# dependencies only; stage 2 is a slim Node 24 LTS runtime that runs as an unprivileged user with
# the `registry-bridge` entrypoint.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY adapters ./adapters
COPY scripts/bundle.mjs ./scripts/bundle.mjs
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
# Under a pod's memory limit (the chart's is 256Mi) Node sizes V8's young generation for a small
# machine: 1 MiB semi-spaces. Every resync's short-lived garbage then goes through the old
# generation, and an unchanged resync of 10,000 services costs 1.4 s of CPU instead of 0.6 s.
# 16 MiB is Node's own default on a larger machine. The bench (`npm run bench`) runs the bridge
# with this line's options, in a memory cgroup, so what it measures is what this image runs.
ENV NODE_OPTIONS="--max-semi-space-size=16"
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY examples ./examples
RUN ln -s /app/dist/registry-bridge.mjs /usr/local/bin/registry-bridge \
 && chmod 0755 /app/dist/registry-bridge.mjs
# A numeric, non-root user (runAsNonRoot can check it); the chart mounts config read-only
# and /tmp as an emptyDir, so the root filesystem can stay read-only.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["registry-bridge"]
CMD ["--help"]
