#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for testing the slurm profile
# (tests/test_slurm.py) -- not for production use.
#
#   tools/slurm_local.sh start    install slurm-wlm + munge if missing (apt-get, needs root),
#                                 start munged, slurmctld and slurmd, wait until the node is idle
#   tools/slurm_local.sh stop     stop the daemons this script started
#   tools/slurm_local.sh status   sinfo + squeue
#
# CPU only: the node is described by `slurmd -C` (its real cores and memory). Process
# tracking is proctrack/linuxproc (no cgroups needed, works in containers), no task
# plugin, no accounting database (so `sacct` does not work: use the plugin's
# `--slurm-status-command squeue`, as profiles/slurm does). MinJobAge stays at its
# default 300 s, so squeue still reports a job for 5 minutes after it finished.
#
# State, spool, logs and pid files live in $SLURM_LOCAL_DIR (default /tmp/faceparse-slurm).
# The config is written there and linked from /etc/slurm/slurm.conf so that every
# client (sinfo, sbatch, squeue, snakemake's plugin) finds it without SLURM_CONF; an
# existing /etc/slurm/slurm.conf that this script did not write is never touched.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/faceparse-slurm}
ETC_CONF=/etc/slurm/slurm.conf
MARKER="# written by faceparse tools/slurm_local.sh"
START_TIMEOUT=${SLURM_LOCAL_TIMEOUT:-90}

log() { echo "slurm_local: $*" >&2; }
fail() { log "$*"; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || fail "must run as root (installs packages, runs munged/slurmd as system users)."
}

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
     && command -v sinfo >/dev/null; then
    return
  fi
  command -v apt-get >/dev/null || fail "slurm-wlm/munge missing and no apt-get to install them."
  log "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$DIR/apt.log" 2>&1 || { cat "$DIR/apt.log" >&2; fail "apt-get update failed"; }
  apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$DIR/apt.log" 2>&1 \
    || { tail -30 "$DIR/apt.log" >&2; fail "apt-get install slurm-wlm munge failed"; }
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
  fi
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return  # already running (ours or the system's)
  fi
  log "starting munged"
  # munged daemonises itself; --force: reuse a stale socket left by a killed instance.
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 20); do
    munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
    sleep 0.5
  done
  fail "munged did not come up (see /var/log/munge/munged.log)"
}

write_conf() {
  local node host
  host=$(hostname -s)
  # slurmd -C prints this machine's node line: NodeName=... CPUs=... RealMemory=...
  node=$(slurmd -C | grep '^NodeName=')
  [ -n "$node" ] || fail "slurmd -C printed no NodeName line"
  mkdir -p "$DIR"/{state,spool,log}
  cat >"$DIR/slurm.conf" <<EOF
$MARKER
ClusterName=faceparse
# Addresses given explicitly: works even where the hostname does not resolve.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups: track job processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# No slurmdbd: no accounting (sacct does not work; status via squeue).
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Cores and memory are consumable, so several small jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
# Reject a job the node can never run (e.g. more CPUs than it has) at sbatch time
# instead of leaving it pending forever.
EnforcePartLimits=ALL
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
# MinJobAge is left at its default (300 s): squeue must still see finished jobs.
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -e "$ETC_CONF" ] && ! grep -qF "$MARKER" "$ETC_CONF"; then
    fail "$ETC_CONF exists and was not written by this script; not overwriting it (set up your cluster by hand, or move it away)."
  fi
  mkdir -p "$(dirname "$ETC_CONF")"
  ln -sfn "$DIR/slurm.conf" "$ETC_CONF"
}

node_idle() {
  sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'
}

start() {
  need_root
  mkdir -p "$DIR"
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" && node_idle; then
    log "already running ($DIR)"; sinfo; return
  fi
  install_packages
  start_munge
  stop_daemons quiet
  write_conf
  log "starting slurmctld and slurmd (state in $DIR)"
  # -D: stay in the foreground (we background them and keep their pids); -c: clear old state.
  nohup slurmctld -D -c -f "$DIR/slurm.conf" >"$DIR/log/slurmctld.out" 2>&1 &
  echo $! >"$DIR/slurmctld.pid"
  nohup slurmd -D -f "$DIR/slurm.conf" >"$DIR/log/slurmd.out" 2>&1 &
  echo $! >"$DIR/slurmd.pid"
  local waited=0
  until node_idle; do
    if ! pid_alive "$DIR/slurmctld.pid" || ! pid_alive "$DIR/slurmd.pid"; then
      tail -20 "$DIR"/log/*.out "$DIR"/log/*.log >&2 2>/dev/null || true
      fail "a SLURM daemon exited (logs above, in $DIR/log)"
    fi
    if [ "$waited" -ge "$START_TIMEOUT" ]; then
      sinfo -N -l >&2 || true
      tail -20 "$DIR"/log/*.log >&2 2>/dev/null || true
      fail "node not idle after ${START_TIMEOUT}s"
    fi
    # A node that registered as down (e.g. after an unclean stop) is put back.
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^down'; then
      scontrol update NodeName="$(sinfo -h -N -o '%N' | head -1)" State=RESUME 2>/dev/null || true
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "cluster up after ${waited}s"
  sinfo
}

stop_daemons() {
  local name pid
  for name in slurmd slurmctld; do
    if pid_alive "$DIR/$name.pid"; then
      pid=$(cat "$DIR/$name.pid")
      [ "${1:-}" = quiet ] || log "stopping $name ($pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$DIR/$name.pid"
  done
}

stop() {
  stop_daemons
  # munged is left running: other users of munge on this machine may need it, and a
  # second start reuses it.
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$DIR/slurm.conf" ]; then
    rm -f "$ETC_CONF"
  fi
  log "stopped (logs kept in $DIR/log)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
