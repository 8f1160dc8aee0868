#!/usr/bin/env bash
# Debian packages `make run` and `make test` need, installed only where missing:
#   scripts/system-deps.sh run       what running needs (make setup/run)
#   scripts/system-deps.sh replicas  that and the engines of `make run REPLICAS=N`
#   scripts/system-deps.sh test      all that and what the suite needs (make test; the default)
# tests/test_fresh_machine.py proves on a throw-away debootstrap root that this is enough.
set -euo pipefail

# Node.js 18+ with npm builds the chat widget (Debian 12's nodejs is 18).
run_packages=(nodejs npm)
# The multi-replica stack (bot/replicas.py): PostgreSQL for the conversation log and the shop,
# Redis for Rasa's lock store, HAProxy in front of the Rasa replicas.
replica_packages=(postgresql redis-server haproxy)
# Chromium for the widget's browser tests, debootstrap for the fresh-machine test; the tests start
# their own PostgreSQL, Redis and HAProxy servers.
test_packages=(chromium fonts-dejavu-core debootstrap)

case "${1:-test}" in
  run) packages=("${run_packages[@]}") ;;
  replicas) packages=("${run_packages[@]}" "${replica_packages[@]}") ;;
  test) packages=("${run_packages[@]}" "${replica_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 [run|replicas|test]" >&2; exit 2 ;;
esac

# A command of the package's name counts too: NodeSource's nodejs bundles npm and conflicts
# with Debian's npm package.
missing=()
for package in "${packages[@]}"; do
  command -v "$package" >/dev/null \
    || dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
