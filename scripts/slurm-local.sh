#!/usr/bin/env bash
# Starts and stops a real one-node SLURM cluster on this machine, for the
# integration test of the SLURM back end (sbatch --array, squeue, scancel).
# Everything (munge key and socket, slurm.conf, state, spool, logs, pid files)
# lives under <state-dir>; nothing global is changed. Runs as root (Debian).
#
#   scripts/slurm-local.sh install            # apt-get install slurm-wlm munge
#   scripts/slurm-local.sh start <state-dir>  # prints: export SLURM_CONF=...
#   scripts/slurm-local.sh stop  <state-dir>  # cancels jobs, stops the daemons
#
# Accounting is off (accounting_storage/none), so sacct does not work; use
# squeue / scontrol show job (finished jobs stay there for MinJobAge=300 s).
# Keep <state-dir> short: munge's socket path must fit in 108 bytes.
# Ports: SLURM_LOCAL_PORT (slurmctld, default 6817) and the next one (slurmd);
# two clusters at once need different ports.
set -euo pipefail

die() { echo "slurm-local: $*" >&2; exit 1; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v munged >/dev/null && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  }
}

write_conf() {
  local mem
  mem=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
  cat >"$D/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmdParameters=config_overrides
MaxArraySize=1001
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  mkdir -p "$D"/{munge,ctld,spool}
  chmod 711 "$D/munge"   # socket reachable by job users, key stays 0600
  if [ ! -s "$D/munge/munge.key" ]; then
    (umask 077; head -c 1024 /dev/urandom >"$D/munge/munge.key")
  fi
  alive "$D/munge/munged.pid" || munged --force \
    --key-file="$D/munge/munge.key" --socket="$D/munge/munge.socket" \
    --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" \
    --seed-file="$D/munge/munged.seed"
  write_conf
  export SLURM_CONF="$D/slurm.conf"
  alive "$D/slurmctld.pid" || slurmctld -f "$SLURM_CONF"
  alive "$D/slurmd.pid" || slurmd -f "$SLURM_CONF" -N "$NODE"
  local p state="" why="" end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ]; do
    state=$(timeout 5 sinfo -h -n "$NODE" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && { echo "export SLURM_CONF=$SLURM_CONF"; return 0; }
    for p in munge/munged slurmctld slurmd; do   # pid files appear within 5 s
      [ $SECONDS -lt $((end - 55)) ] || alive "$D/$p.pid" || why="${p#*/} exited; "
    done
    [ -n "$why" ] && break
    sleep 1
  done
  for f in munge/munged.log slurmctld.log slurmd.log; do
    echo "==== $D/$f" >&2; tail -n 30 "$D/$f" >&2 2>/dev/null || true
  done
  die "${why}node $NODE is not idle (state: '${state:-none}'); stop with: $0 stop $D"
}

stop() {
  export SLURM_CONF="$D/slurm.conf"
  if alive "$D/slurmctld.pid"; then   # running jobs' slurmstepd would outlive slurmd
    scancel --partition=debug 2>/dev/null || true
    for _ in $(seq 20); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5
    done
  fi
  local p pid
  for p in slurmd.pid slurmctld.pid munge/munged.pid; do
    alive "$D/$p" || { rm -f "$D/$p"; continue; }
    pid=$(cat "$D/$p"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && die "$p: process $pid did not exit"
    rm -f "$D/$p"
  done
}

cmd=${1:-}
[ "$cmd" = install ] && { install; exit 0; }
[ "$cmd" = start ] || [ "$cmd" = stop ] || die "usage: $0 install | start DIR | stop DIR"
[ -n "${2:-}" ] || die "usage: $0 $cmd <state-dir>"
mkdir -p "$2"; D=$(cd "$2" && pwd)
NODE=$(hostname -s 2>/dev/null || true); NODE=${NODE:-localhost}
PORT=${SLURM_LOCAL_PORT:-6817}
"$cmd"
