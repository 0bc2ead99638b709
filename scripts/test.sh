#!/usr/bin/env bash
# The README's test command: `sudo scripts/test.sh`.
#
# As root: installs with apt-get what the tests need (scripts/setup.sh test: docker.io,
# minisign, zstd, pigz, time, skopeo, umoci, docker-registry, openssl, podman; helm-python-sdk from
# PyPI for the chart tests' renderer), fetches Debian trixie's Docker 26 once into a cache folder
# (scripts/setup.sh setup_docker26: /var/cache/partial-tests/docker26, or PARTIAL_DOCKER26_CACHE)
# and exports PARTIAL_DOCKER26_DIR for the docker26 tests (whose containerd 1.7 the containerd
# tests run too), fetches Debian forky's containerd 2.x the same way (setup_containerd2:
# /var/cache/partial-tests/containerd2, or PARTIAL_CONTAINERD2_CACHE) and exports
# PARTIAL_CONTAINERD2_DIR for the containerd tests, makes the daemon and tool tests
# mandatory (PARTIAL_REQUIRE_DAEMON=1 PARTIAL_REQUIRE_TOOLS=1: a test that cannot start its
# private dockerd or find its tool fails instead of skipping) and runs `cargo test --workspace`.
# Without root: says what it would need, then runs what it can (the daemon tests print
# `=== SKIPPED: … ===` and pass).
#
# Arguments replace `--workspace`: `sudo scripts/test.sh -p partial-tests --test e2e -- export::`.
# Rust comes from rustup (https://rustup.rs); it is not installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
. scripts/setup.sh

find_cargo
if [[ $(id -u) == 0 ]]; then
  setup_packages test
  setup_python_test
  # Docker 26 (Debian trixie's, unpacked in a cache folder) for the docker26 tests.
  PARTIAL_DOCKER26_DIR=$(setup_docker26)
  export PARTIAL_DOCKER26_DIR
  echo "test.sh: Docker 26 for the docker26 tests: $PARTIAL_DOCKER26_DIR" >&2
  # containerd 2.x (Debian forky's) for the containerd tests, next to 1.6 and 1.7.
  PARTIAL_CONTAINERD2_DIR=$(setup_containerd2)
  export PARTIAL_CONTAINERD2_DIR
  echo "test.sh: containerd 2.x for the containerd tests: $PARTIAL_CONTAINERD2_DIR" >&2
  export PARTIAL_REQUIRE_DAEMON=1 PARTIAL_REQUIRE_TOOLS=1
  echo "test.sh: daemon and tool tests are mandatory (PARTIAL_REQUIRE_DAEMON=1 PARTIAL_REQUIRE_TOOLS=1)" >&2
else
  setup_packages --check test || true
  echo "test.sh: not root: the tests that start private dockerd daemons will be SKIPPED;" \
    "run 'sudo scripts/test.sh' to install what they need and run them all" >&2
fi
# --no-fail-fast: every test binary runs even when one fails; the summary line counts them all.
log=$(mktemp /tmp/partial-test.XXXXXX)
trap 'rm -f "$log"' EXIT
rc=0
if (($#)); then
  cargo test --no-fail-fast "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
else
  cargo test --no-fail-fast --workspace 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
fi
# One closing line over every binary: "N passed, N failed, N skipped".
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "test.sh: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$rc"
