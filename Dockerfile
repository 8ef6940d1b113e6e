# The mintfs image: the CSI node plugin (`mintfs csi`), the gateway
# (`mintfs gateway`) and every other command.
#
# BASE must hold Node.js 22 at /usr/local/bin/node, fusermount3 (setuid),
# mount, umount and flock, libfuse3 and a /bin/sh. Without a registry,
# deploy/docker/build-image.sh assembles one from the build machine's
# Debian packages and builds this with it (it also stages the context: the
# built dist/ and production node_modules). With a registry, a Debian base
# with those packages does the same job.
ARG BASE=mintfs-base:0.1.0
FROM ${BASE}
WORKDIR /opt/mintfs
COPY package.json package-lock.json ./
COPY node_modules ./node_modules
COPY dist ./dist
COPY mount-profiles ./mount-profiles
ENV NODE_ENV=production MINTFS_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/node", "/opt/mintfs/dist/src/bundle/mintfs.js"]
CMD ["--help"]
