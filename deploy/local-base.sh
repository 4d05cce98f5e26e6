#!/bin/sh
# A stand-in for `python:3.11-slim` made from Debian's packages, for machines with buildah but no registry
# (make test-image). It is Debian bookworm's minimal system with its Python 3.11 and venv, tagged with the
# name the Containerfile's FROM uses, so that file builds unchanged. Elsewhere, the registry's image is used.
# It trusts what this machine trusts: certificates added under /usr/local/share/ca-certificates (an egress
# proxy's, say) are copied in, and pip is pointed at the system bundle, so the build's `pip install` works
# wherever the machine's own does.
#   deploy/local-base.sh [MIRROR]     (as root; needs buildah and debootstrap)
set -eu
mirror=${1:-http://deb.debian.org/debian}
name=localhost/costlake-base:bookworm
if buildah inspect --type image "$name" >/dev/null 2>&1; then
  echo "base image $name: already built"
else
  rootfs=$(mktemp -d /var/tmp/costlake-base.XXXXXX)
  trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
  echo "base image $name: debootstrap bookworm from $mirror (about 2 minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -5 "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  extra_env=
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs"/usr/local/share/ca-certificates/
    chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    extra_env="--env PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  c=$(buildah from scratch)
  m=$(buildah mount "$c")
  cp -a "$rootfs"/. "$m"/
  buildah umount "$c" >/dev/null
  # shellcheck disable=SC2086
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin $extra_env --cmd python3 "$c"
  buildah commit --quiet --rm "$c" "$name" >/dev/null
fi
buildah tag "$name" docker.io/library/python:3.11-slim
