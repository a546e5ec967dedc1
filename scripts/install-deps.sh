#!/usr/bin/env bash
# Installs the Debian packages the interop tests and benchmarks use (real
# peers: skopeo, podman, buildah, umoci, containerd, CNCF distribution,
# htpasswd, Docker Engine, a static busybox for runnable test images, Ceph RGW for S3, nginx for X-Accel-Redirect,
# PostgreSQL for the scale-out tests: scripts/services/postgres.sh). Idempotent: does nothing when everything is present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have skopeo || need+=(skopeo)
have podman || need+=(podman)
have buildah || need+=(buildah)
have umoci || need+=(umoci)
have containerd || need+=(containerd)
have docker-registry || need+=(docker-registry)
have htpasswd || need+=(apache2-utils)
have openssl || need+=(openssl)
have ab || need+=(apache2-utils)
[ -x /usr/bin/docker ] && have dockerd || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
have ip || need+=(iproute2)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Ceph RGW, the S3-compatible store of the S3 tests (scripts/services/start-s3.sh).
have radosgw || need+=(ceph-mon ceph-osd radosgw ceph-common)
have curl || need+=(curl)
[ -x /usr/sbin/nginx ] || need+=(nginx)
# The scanner tests build zstd-compressed layers and a real rpmdb.sqlite (rpm --justdb, rpmbuild).
have zstd || need+=(zstd)
have rpm || need+=(rpm)
have rpmbuild || need+=(rpm)
# …and a Berkeley DB rpmdb (`Packages`) with db5.3_load.
have db5.3_load || need+=(db5.3-util)
# The web UI's browser tests (test/ui) drive Debian's chromium through playwright-core.
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${need[*]} (run as root, or install them: apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# skopeo and podman keep caches here; the folder must exist for private mounts over it.
mkdir -p /var/lib/containers
