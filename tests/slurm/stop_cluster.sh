#!/usr/bin/env bash
# Stop the one-node test cluster that tests/slurm/start_cluster.sh started: slurmd,
# slurmctld, and munged if that script started it. Job records and the configuration
# files stay (start_cluster.sh reuses them); nothing else is touched.
set -uo pipefail
SPOOL=/var/spool/diffscale-slurm
stop() {  # pidfile
    [[ -s $1 ]] || return 0
    local pid; pid=$(cat "$1")
    kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}
stop /run/diffscale-slurmd.pid
stop /run/diffscale-slurmctld.pid
if [[ -e $SPOOL/started-munged ]]; then
    stop /run/munge/munged.pid
    rm -f "$SPOOL/started-munged"
fi
exit 0
