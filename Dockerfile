# Production image: the platform's Node fronts plus the daemons it supervises.
FROM node:20-bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openssl ca-certificates slapd ldap-utils dovecot-imapd dovecot-lmtpd dovecot-fts-xapian \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/mss
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && npx tsc -p webui/tsconfig.json && npm prune --omit=dev
ENV MSS_DATA_DIR=/var/lib/mss
VOLUME /var/lib/mss
CMD ["node", "dist/bin/mss.js", "start"]
