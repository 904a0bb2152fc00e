#!/usr/bin/env bash
# A real two-node Slurm on this host, for CI: munged, slurmctld and two slurmd
# daemons (nodes n1 and n2) on loopback, without systemd. Needs root and
# Debian's slurmctld, slurmd, slurm-client and munge (installed when missing).
#
# Usage:
#   tools/ci/slurm-local.sh start    # install if needed, configure, start, wait until both nodes are idle
#   tools/ci/slurm-local.sh stop     # stop what start started, by PID
#   tools/ci/slurm-local.sh status   # sinfo
# Then, in the same shell environment:
#   export SLURM_CONF=$(tools/ci/slurm-local.sh conf)
#   srun -N2 -n3 env | grep SLURM_
#
# Everything lives under $SLURM_LOCAL_DIR (default /tmp/gorlhf-slurm): the
# config, spool and state folders, logs and PID files. Nothing in /etc is
# changed except what the Debian packages install. The controller listens
# on 127.0.0.1:16817, the two slurmd on 127.0.0.1:17001 and :17002.
set -euo pipefail
DIR=${SLURM_LOCAL_DIR:-/tmp/gorlhf-slurm}
CONF=$DIR/slurm.conf
CPUS=${SLURM_LOCAL_CPUS:-8} # CPUs each node claims (config_overrides: more than the host has is fine)

die() { echo "slurm-local: $*" >&2; exit 1; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v srun >/dev/null && command -v munged >/dev/null; then
    return
  fi
  [ "$(id -u)" = 0 ] || die "needs root to install slurmctld slurmd slurm-client munge"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {
  local host; host=$(hostname -s)
  mkdir -p "$DIR/state" "$DIR/spool/n1" "$DIR/spool/n2" "$DIR/log"
  chmod 755 "$DIR"
  chown slurm:slurm "$DIR/state" "$DIR/log"
  cat >"$CONF" <<CONF
ClusterName=gorlhf-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=n[1-2] NodeHostname=$host NodeAddr=127.0.0.1 Port=17001-17002 CPUs=$CPUS RealMemory=2000 State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

# alive PIDFILE: the process named in PIDFILE is running.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  [ "$(id -u)" = 0 ] || die "start needs root"
  install
  alive "$DIR/slurmctld.pid" && die "already running (pid $(cat "$DIR/slurmctld.pid")); run stop first"
  rm -rf "$DIR/state" "$DIR/spool" # a clean controller state every time
  write_conf
  if [ -S /run/munge/munge.socket.2 ] && munge -n </dev/null >/dev/null 2>&1; then
    echo "slurm-local: using the munged already running"
  else
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid" # ours to stop
  fi
  /usr/sbin/slurmctld -f "$CONF" -c
  /usr/sbin/slurmd -f "$CONF" -N n1
  /usr/sbin/slurmd -f "$CONF" -N n2
  export SLURM_CONF=$CONF
  for _ in $(seq 60); do # both nodes idle, within 30 s
    [ "$(sinfo -h -N -o '%t' 2>/dev/null | grep -c '^idle$')" = 2 ] && { sinfo -N; return 0; }
    sleep 0.5
  done
  sinfo -N || true
  tail -n 20 "$DIR"/log/*.log >&2 || true
  die "nodes not idle after 30 s"
}

# stop_pid NAME PIDFILE: SIGTERM the process, wait up to 10 s, then SIGKILL.
stop_pid() {
  alive "$2" || { rm -f "$2"; return 0; }
  local pid; pid=$(cat "$2")
  kill "$pid"
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || { rm -f "$2"; return 0; }; sleep 0.5; done
  echo "slurm-local: $1 (pid $pid) ignored SIGTERM; killing" >&2
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$2"
}

stop() {
  stop_pid slurmd-n1 "$DIR/slurmd-n1.pid"
  stop_pid slurmd-n2 "$DIR/slurmd-n2.pid"
  stop_pid slurmctld "$DIR/slurmctld.pid"
  stop_pid munged "$DIR/munged.pid"
  echo "slurm-local: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF=$CONF sinfo -N ;;
  conf) echo "$CONF" ;;
  *) die "usage: $0 start|stop|status|conf" ;;
esac
