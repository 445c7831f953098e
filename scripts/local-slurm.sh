#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for `mnistctl sweep hydra/launcher=submitit_slurm`.
#
#   eval "$(scripts/local-slurm.sh start)"   # installs slurm-wlm + munge if missing; prints `export SLURM_CONF=...`
#   sbatch --wait --wrap hostname && squeue
#   scripts/local-slurm.sh status            # exit 0 when the controller answers and the node is up
#   scripts/local-slurm.sh stop              # stops the daemons it started and removes their state
#
# Everything (munge key and socket, slurm.conf, state, spool, pid and log files) lives under
# $MNISTCTL_SLURM_DIR (default /tmp/mnistctl-slurm); the cluster writes nothing to /etc. Needs root (the daemons
# run jobs as the submitting user) and, the first time, apt-get with network access.
# `start` is idempotent: a running cluster is reused. Only its export line goes to stdout.
#
# Environment:
#   MNISTCTL_SLURM_DIR        state folder (default /tmp/mnistctl-slurm)
#   MNISTCTL_SLURM_WAIT       seconds to wait for the node to become idle (default 90)
#   MNISTCTL_SLURM_PARTITION  name of the one (default) partition (default local)
#   MNISTCTL_SLURMCTLD_PORT / MNISTCTL_SLURMD_PORT   (defaults 6817 / 6818, SLURM's own)
#
# Exit status: 0 ok; 1 failure (logs are shown); 2 usage; 3 SLURM cannot run on this machine
# (not root, no apt-get, the install failed): tests skip on 3 and fail on anything else.
set -euo pipefail

DIR="${MNISTCTL_SLURM_DIR:-/tmp/mnistctl-slurm}"
WAIT_S="${MNISTCTL_SLURM_WAIT:-90}"
PARTITION="${MNISTCTL_SLURM_PARTITION:-local}"
CTLD_PORT="${MNISTCTL_SLURMCTLD_PORT:-6817}"
SLURMD_PORT="${MNISTCTL_SLURMD_PORT:-6818}"
CONF="$DIR/slurm.conf"
MUNGE_DIR="$DIR/munge"
MUNGE_SOCKET="$MUNGE_DIR/munge.socket"
# The lock sits beside the state folder: `stop` removes the folder, and start/stop must not interleave.
LOCK="$DIR.lock"
NODE="$(hostname)"
export SLURM_CONF="$CONF"

log() { printf 'local-slurm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
unsupported() { log "cannot run SLURM on this machine: $*"; exit 3; }

usage() {
  sed -n '2,21s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

# The pid in a pid file, if that process is alive and is the named daemon (not a reused pid).
live_pid() {
  local name="$1" file="$2" pid
  [[ -s "$file" ]] || return 1
  pid="$(<"$file")"
  [[ "$pid" =~ ^[0-9]+$ && "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name" ]] && printf '%s\n' "$pid"
}

running() {
  live_pid slurmctld "$DIR/run/slurmctld.pid" >/dev/null && live_pid slurmd "$DIR/run/slurmd.pid" >/dev/null \
    && live_pid munged "$MUNGE_DIR/munged.pid" >/dev/null
}

# The node's state as sinfo reports it ("idle", "mix", "down*", ...), empty when the controller does not answer.
node_state() {
  timeout 10 sinfo --noheader --nodes="$NODE" --format='%t' 2>/dev/null | head -n 1 || true
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    || missing+=(slurm-wlm)
  command -v munged >/dev/null || missing+=(munge)
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || unsupported "${missing[*]} not installed and no apt-get to install it"
  log "installing Debian's ${missing[*]} (apt-get update + install, about 20-60 s)"
  export DEBIAN_FRONTEND=noninteractive
  local apt_log="${DIR}.apt.log"
  if ! { apt-get -q update && apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "${missing[@]}"; } \
    >"$apt_log" 2>&1; then
    tail -n 20 "$apt_log" >&2
    unsupported "apt-get could not install ${missing[*]} (full log: $apt_log)"
  fi
  rm -f "$apt_log"
}

# Kills the process in a pid file and waits (bounded) until it is gone.
stop_pid_file() {
  local name="$1" file="$2" pid i
  pid="$(live_pid "$name" "$file")" || return 0
  log "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
}

stop_daemons() {
  local jobs i
  # Cancel jobs first: their slurmstepd processes would outlive slurmd.
  if live_pid slurmctld "$DIR/run/slurmctld.pid" >/dev/null; then
    jobs="$(timeout 10 squeue --noheader --format=%i 2>/dev/null | tr '\n' ' ' || true)"
    if [[ -n "${jobs// /}" ]]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086 # one job id per word
      timeout 10 scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 30; i++)); do
        [[ -z "$(timeout 10 squeue --noheader --format=%i 2>/dev/null)" ]] && break
        sleep 1
      done
    fi
  fi
  stop_pid_file slurmd "$DIR/run/slurmd.pid"
  stop_pid_file slurmctld "$DIR/run/slurmctld.pid"
  stop_pid_file munged "$MUNGE_DIR/munged.pid"
}

write_conf() {
  local mem_mb cpus
  cpus="$(nproc)"
  # slurmd drains a node that claims more memory than it has: leave 10% (at least 512 MB) for the OS.
  mem_mb="$(free -m | awk '/^Mem:/ {m = int($2 * 0.9); if ($2 - m < 512) m = $2 - 512; print m}')"
  ((mem_mb > 0)) || die "could not read the memory size from free -m"
  cat >"$CONF" <<EOF
# Written by scripts/local-slurm.sh: a single-node cluster for local tests. Do not edit; rerun the script.
ClusterName=mnistctl
SlurmctldHost=$NODE
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Our own munged: its socket, not the system one in /run/munge.
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups (containers, gVisor): track processes through /proc, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs that do not ask for memory get their CPUs' share of it, not the whole node, so several run at once.
DefMemPerCPU=$((mem_mb / cpus))
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SwitchType=switch/none
ReturnToService=2
KillWait=5
MinJobAge=300
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  id munge >/dev/null 2>&1 || die "user munge does not exist (is the munge package installed?)"
  install -d -m 0755 -o munge -g munge "$MUNGE_DIR"
  # munged refuses a key that others can read.
  dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
  chown munge:munge "$MUNGE_DIR/munge.key"
  chmod 0400 "$MUNGE_DIR/munge.key"
  # 9>&-: the daemons must not inherit (and hold forever) the lock of this script.
  runuser -u munge -- munged 9>&- --key-file="$MUNGE_DIR/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
    || fail_start "munged did not start"
  munge --socket="$MUNGE_SOCKET" -n | unmunge --socket="$MUNGE_SOCKET" >/dev/null \
    || fail_start "munged started but does not answer on $MUNGE_SOCKET"
}

show_logs() {
  local f
  for f in "$MUNGE_DIR/munged.log" "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log"; do
    [[ -f "$f" ]] || continue
    log "--- last lines of $f"
    tail -n 15 "$f" >&2
  done
}

# A start that failed: show why, stop what did start (a half-up cluster helps no one), keep the logs.
fail_start() {
  show_logs
  stop_daemons
  die "$* (logs kept under $DIR; 'local-slurm.sh stop' removes them)"
}

wait_idle() {
  local state="" deadline=$((SECONDS + WAIT_S))
  while ((SECONDS < deadline)); do
    state="$(node_state)"
    case "$state" in
      idle | mix | alloc | comp) return 0 ;;
    esac
    sleep 1
  done
  fail_start "node $NODE not idle after ${WAIT_S} s (sinfo state: '${state:-no answer}'; MNISTCTL_SLURM_WAIT sets the wait)"
}

cmd_start() {
  install_packages
  if running && [[ -n "$(node_state)" ]]; then
    log "already running (state under $DIR)"
  else
    # Leftovers of a crashed or half-started cluster: stop what still runs and start clean.
    stop_daemons
    rm -rf "$DIR"
    mkdir -p "$DIR"/{state,spool,run,log}
    write_conf
    start_munge
    log "starting slurmctld and slurmd on $NODE (partition $PARTITION)"
    # -c: no state to recover; both daemonise and write their pid files.
    slurmctld -c -f "$CONF" 9>&- || fail_start "slurmctld did not start"
    slurmd -f "$CONF" 9>&- || fail_start "slurmd did not start"
  fi
  wait_idle
  log "node $NODE is $(node_state); submit with SLURM_CONF set:"
  printf 'export SLURM_CONF=%s\n' "$CONF"
}

cmd_stop() {
  stop_daemons
  rm -rf "$DIR"
  log "stopped; removed $DIR"
}

cmd_status() {
  if ! running; then
    log "not running (no live daemons under $DIR)"
    return 1
  fi
  local state
  state="$(node_state)"
  [[ -n "$state" ]] || { log "daemons are alive but slurmctld does not answer"; return 1; }
  sinfo
  squeue
  printf 'export SLURM_CONF=%s\n' "$CONF"
  [[ "$state" != down* && "$state" != drain* && "$state" != fail* ]]
}

main() {
  (($# == 1)) || usage
  case "$1" in
    status) cmd_status; return ;; # read-only: no lock, any user
    start) [[ "$(id -u)" == 0 ]] || unsupported "slurmctld and slurmd run as root here; uid is $(id -u)" ;;
    stop) [[ "$(id -u)" == 0 ]] || die "stop needs root (the daemons run as root); uid is $(id -u)" ;;
    *) usage ;;
  esac
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$LOCK"
  flock -w 600 9 || die "another local-slurm.sh has held $LOCK for 10 minutes"
  "cmd_$1"
}

main "$@"
