# One image for every application process: `npm run api` (the default command), `npm run worker`
# and `npm run migrate`. docker-compose.yml builds it once (as media-generation:local) and runs it
# as each of those services; `docker build -t media-generation:local .` builds it by hand.

# ---- build: all dependencies, type-check, prebuilt workflow bundle ---------------------------
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
ENV CI=true \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

COPY package.json package-lock.json ./
RUN npm ci

COPY . .
# The image is only built from sources that type-check (the server's and the console's).
RUN npx tsc --noEmit && npx tsc --noEmit -p console
# The web console's page, bundled into dist/console (the runtime stage ships it without its sources).
RUN npm run build:console && test -s dist/console/index.html
# Writes dist/workflow-bundle.js; the runtime stage names it in WORKFLOW_BUNDLE_PATH, so a worker
# starts without webpack (and without the dev dependencies webpack would need).
RUN npm run bundle:workflows && test -s dist/workflow-bundle.js
# The image's worker build id under WORKER_BUILD_ID=auto (what compose sets; docs/operating.md, "Deploys"): the
# first 12 hex digits of the bundle's SHA-256, as the worker computes it at start. Kept in the image
# for deploy scripts: `docker run --rm media-generation:local cat dist/worker-build-id`.
RUN sha256sum dist/workflow-bundle.js | cut -c1-12 > dist/worker-build-id && echo "worker build id: $(cat dist/worker-build-id)"

# ---- runtime: production dependencies and the sources tsx runs ----------------------------
FROM node:20.20.2-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

COPY package.json package-lock.json ./
# tsx is a production dependency: `npm run api|worker|migrate` run the TypeScript sources with it.
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json drizzle.config.ts ./
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY db ./db
COPY common ./common
COPY jobs ./jobs
COPY scripts ./scripts
COPY --from=build /app/dist/workflow-bundle.js ./dist/workflow-bundle.js
COPY --from=build /app/dist/worker-build-id ./dist/worker-build-id
COPY --from=build /app/dist/console ./dist/console
# The image's sources never change: its workers load the bundle built from them, named explicitly so
# that no comparison of the files' times (which builders do not keep alike) decides it.
ENV WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js

# Sources stay root-owned and read-only; the processes run as the unprivileged `node` user.
USER node
EXPOSE 8000
CMD ["npm", "run", "api"]
