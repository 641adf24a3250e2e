#!/usr/bin/env bash
# Installs from Debian what the comparison (go run ./scripts/compare) needs
# and this machine lacks: redis-server, which it measures against,
# etcd-server, the anchor of the cluster section, and gnuplot-nox, which
# draws its plots. Run as root; apt-get update runs only when something is
# missing. It fails only if redis-server cannot be installed: without
# gnuplot the comparison still runs, and says in PERFORMANCE.md that it
# drew no plots; without etcd it leaves the cluster table's etcd columns
# out, and says so.
#
# The comparison runs this itself when a package is missing, unless it is
# given --no-install; .ci/run runs it so that CI's smoke run draws the plots.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v etcd >/dev/null || need+=(etcd-server)
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
for pkg in "${need[@]}"; do
  case $pkg in
  redis-server)
    apt-get -o DPkg::Lock::Timeout=120 install -y -qq redis-server
    ;;
  gnuplot-nox)
    # Its recommends pull in ImageMagick and Ghostscript; the PNG
    # terminals need none of them.
    apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends gnuplot-nox ||
      echo "apt-get install gnuplot-nox failed: the comparison draws no plots" >&2
    ;;
  etcd-server)
    # The package's service is not started (policy-rc.d, or no systemd in
    # a container); the comparison starts its own three members.
    apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends etcd-server ||
      echo "apt-get install etcd-server failed: the cluster table has no etcd columns" >&2
    ;;
  esac
done
