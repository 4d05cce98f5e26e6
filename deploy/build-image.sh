#!/bin/sh
# Build costlake's image with the first container engine that works here: docker (with a daemon),
# podman, then buildah. The HEALTHCHECK needs the Docker image format, which podman and buildah are told
# to use (OCI images have no health check).
#   deploy/build-image.sh [IMAGE] [TARGET]      default costlake:<version> and the `service` target
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image=${1:-costlake:$version}
target=${2:-service}
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  set -- docker build
elif command -v podman >/dev/null 2>&1; then
  set -- podman build --format docker
elif command -v buildah >/dev/null 2>&1; then
  # chroot isolation needs no OCI runtime (none works on some hosts, such as these test machines)
  export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
  set -- buildah bud --format docker
else
  echo "error: building the image needs docker (with its daemon running), podman or buildah" >&2
  exit 1
fi
echo "building $image (target $target) with $1"
start=$(date +%s)
"$@" --target "$target" -t "$image" -f Containerfile .
echo "built $image in $(( $(date +%s) - start )) s"
