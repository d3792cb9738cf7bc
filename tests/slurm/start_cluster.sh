#!/usr/bin/env bash
# Start (or leave running) a one-node Slurm cluster on this machine for the Slurm test:
# munged + slurmctld + slurmd, partitions `cpu` (default) and `gpu`, and a stand-in GPU
# generic resource so that `--gpus=N` requests are accepted on machines without GPUs.
#
#   sudo tests/slurm/start_cluster.sh        # idempotent; prints the partitions when up
#   sudo tests/slurm/stop_cluster.sh         # stops the daemons this script started
#
# Needs root and Debian's slurmctld, slurmd, slurm-client and munge packages
# (apt-get install slurmctld slurmd slurm-client munge). Exit status 3 means "cannot run
# here" (not root, packages missing, or a Slurm configuration this script did not write):
# the pytest fixture turns that into a skip (a failure under CI=true).
#
# The node is a stand-in: it declares more CPUs than the machine has and 22 GB of memory,
# a small compute node (SlurmdParameters=config_overrides), so that the rules' memory
# requests are checked against a real limit (test_slurm_resources.py); jobs still run
# on the real cores. Nothing is enforced (proctrack/linuxproc, task/none), which is
# fine for a test of job submission.
set -euo pipefail
PATH=$PATH:/usr/sbin:/sbin  # the daemons live in sbin, often not on a user's PATH

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES=$CONF_DIR/gres.conf
MARK="# written by diffscale tests/slurm/start_cluster.sh"
NODE=$(hostname -s)
CPUS=${DIFFSCALE_SLURM_CPUS:-32}
MEM_MB=${DIFFSCALE_SLURM_MEM_MB:-22000}
GPUS=${DIFFSCALE_SLURM_GPUS:-4}
SPOOL=/var/spool/diffscale-slurm
LOGDIR=/var/log/slurm

cannot() { echo "start_cluster.sh: cannot start a test cluster here: $*" >&2; exit 3; }

[[ $(id -u) == 0 ]] || cannot "needs root (slurmd runs jobs as their users)"
for bin in munged munge slurmctld slurmd sbatch squeue sinfo scontrol; do
    command -v "$bin" >/dev/null || cannot "'$bin' not found; install with: apt-get install slurmctld slurmd slurm-client munge"
done
for f in "$CONF" "$GRES"; do
    if [[ -e $f ]] && ! grep -qxF "$MARK" "$f"; then
        cannot "$f exists and was not written by this script; refusing to touch a real Slurm set-up"
    fi
done

mkdir -p "$CONF_DIR" "$SPOOL/ctld" "$SPOOL/d" "$LOGDIR"
new_conf=$(cat <<CONF
$MARK
ClusterName=diffscale-test
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/diffscale-slurmctld.pid
SlurmdPidFile=/run/diffscale-slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol for an hour: the Snakemake plugin's
# squeue status checks need that (there is no accounting database here), and the test
# reads the submission records afterwards.
MinJobAge=3600
SchedulerParameters=sched_interval=2
NodeName=$NODE CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$NODE MaxTime=INFINITE State=UP
CONF
)
# Stand-in GPUs: slurmd counts a GPU per device file it finds, so empty files serve
# (AutoDetect=off: no NVML). Enough for the scheduler to accept and account --gpus.
for ((i = 0; i < GPUS; i++)); do touch "$SPOOL/fake-gpu$i"; done
new_gres=$(printf '%s\nAutoDetect=off\nNodeName=%s Name=gpu File=%s/fake-gpu[0-%d]\n' \
    "$MARK" "$NODE" "$SPOOL" "$((GPUS - 1))")

changed=0
if [[ ! -e $CONF ]] || [[ $(cat "$CONF") != "$new_conf" ]]; then echo "$new_conf" > "$CONF"; changed=1; fi
if [[ ! -e $GRES ]] || [[ $(cat "$GRES") != "$new_gres" ]]; then echo "$new_gres" > "$GRES"; changed=1; fi

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# munge: the authentication both daemons and every client command use.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
        chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n | unmunge >/dev/null || { echo "munged did not start" >&2; exit 1; }
    touch "$SPOOL/started-munged"
fi

if (( changed )); then
    # A changed configuration (node size, partitions) needs fresh daemons.
    for pidfile in /run/diffscale-slurmd.pid /run/diffscale-slurmctld.pid; do
        if alive "$pidfile"; then kill "$(cat "$pidfile")"; fi
    done
    for _ in $(seq 50); do alive /run/diffscale-slurmctld.pid || alive /run/diffscale-slurmd.pid || break; sleep 0.2; done
fi
alive /run/diffscale-slurmctld.pid || slurmctld
alive /run/diffscale-slurmd.pid || slurmd
# Both fork into the background and write their pid files a moment later.
for _ in $(seq 50); do
    alive /run/diffscale-slurmctld.pid && alive /run/diffscale-slurmd.pid && break
    sleep 0.2
done

# Wait until the node takes jobs.
for _ in $(seq 120); do
    for pidfile in /run/diffscale-slurmctld.pid /run/diffscale-slurmd.pid; do
        alive "$pidfile" || { echo "$pidfile: daemon died; see $LOGDIR/slurmctld.log and $LOGDIR/slurmd.log" >&2; exit 1; }
    done
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -1 || true)
    case $state in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*) scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case $state in
    idle|mixed|allocated) ;;
    *) echo "node $NODE is '$state' after 60 s; see $LOGDIR/slurmctld.log and $LOGDIR/slurmd.log" >&2; exit 1 ;;
esac
sinfo -o "%P %a %D %c %m %G %T"
