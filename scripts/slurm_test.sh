#!/usr/bin/env bash
# Real test of `tom sweep --backend slurm`: starts a single-node Slurm on this machine
# (Debian's slurmctld, slurmd and munge, configured under a temporary directory, on
# unused ports, stopped at the end), submits a tiny sweep (2 cells, 600 steps of SAC on
# inverted_pendulum), requeues one array task while it runs, waits, and checks that
# every cell's metrics equal those of the same sweep on the local backend (timing
# columns aside). Skips with a message where Slurm cannot start (no root to install it,
# daemons refusing to run). Installs slurmctld, slurmd, slurm-client and munge if missing.
#   TOM_BUILD_DIR (default build) holds the `tom` to test.
set -euo pipefail
cd "$(dirname "$0")/.."
tom=$(realpath "${TOM_BUILD_DIR:-build}/tom")
[[ -x "$tom" ]] || { echo "slurm test: no $tom (build first)" >&2; exit 1; }

skip() { echo "SKIP: slurm test: $*"; echo "slurm test: 0 passed, 0 failed, 1 skipped"; exit 0; }
fail() { echo "FAIL: slurm test: $*" >&2; show_logs; echo "slurm test: 0 passed, 1 failed"; exit 1; }

missing=()
for p in slurmctld slurmd slurm-client munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || skip "needs ${missing[*]} (apt-get install as root)"
  echo "installing ${missing[*]}"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null ||
    skip "could not install ${missing[*]}"
fi
[[ $(id -u) -eq 0 ]] || skip "starting slurmd needs root here"

work=$(mktemp -d /tmp/tom_slurm.XXXXXX)
chmod 755 "$work"
pids=()
show_logs() {
  for f in "$work"/slurmctld.log "$work"/slurmd.log "$work"/munge/munged.log; do
    [[ -f "$f" ]] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
  done
  for f in "$work"/slurm_sweep/logs/*.log; do
    [[ -f "$f" ]] && { echo "--- last lines of $f"; tail -n 8 "$f"; }
  done
  true
}
cleanup() {
  [[ -n "${SLURM_CONF:-}" ]] && scancel --quiet -u root 2> /dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2> /dev/null || true; done
  [[ -f "$work/munge/munged.pid" ]] && kill "$(cat "$work/munge/munged.pid")" 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# munge, on its own key and socket.
mkdir -p "$work/munge"
chmod 700 "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" \
  --seed-file="$work/munge/munged.seed" 2> "$work/munge/start.err" ||
  skip "munged does not start: $(cat "$work/munge/start.err")"

# Slurm: one node (this machine), one partition, free ports.
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])' 2> /dev/null ||
         echo $((20000 + RANDOM % 20000)); }
ctl_port=$(port)
d_port=$(port)
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF="$work/slurm.conf"
cat > "$SLURM_CONF" << CONF
ClusterName=tomtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=60
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=tomtest Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -c -f "$SLURM_CONF" > "$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$work/slurmd.out" 2>&1 &
pids+=($!)
up=""
for _ in $(seq 60); do
  state=$(sinfo -h -o %T 2> /dev/null | head -n 1 || true)
  if [[ "$state" == idle* ]]; then up=1; break; fi
  sleep 1
done
if [[ -z "$up" ]]; then
  show_logs
  skip "the single-node Slurm did not come up (node state '${state:-none}'; logs above)"
fi
echo "slurm test: single-node Slurm up on $host ($cpus CPUs), partition tomtest"

grid=(--algo sac --env inverted_pendulum --seeds 0-1 --steps 600 --eval-every 200 --eval-episodes 2
      --checkpoint-every 100 --set sac.hidden_size=32 --set sac_loop.random_steps=200
      --set sac_loop.update_after=200)
"$tom" sweep "${grid[@]}" --backend slurm --partition tomtest --time 00:20:00 --cpus-per-task 1 \
  --out "$work/slurm_sweep" | tee "$work/submit.txt"
job=$(sed -n 's/^submitted job array \([0-9]*\).*/\1/p' "$work/submit.txt")
[[ -n "$job" ]] || fail "no job id from tom sweep --backend slurm"

# Requeue array task 1 once it has a checkpoint: Slurm stops it (SIGTERM, tom writes a
# checkpoint) and runs it again, when it must resume, not start over.
requeued=""
for _ in $(seq 600); do
  if [[ -f "$work/slurm_sweep/inverted_pendulum/sac/seed1/checkpoint.pt" ]] &&
     squeue -h -j "${job}_1" -o %T 2> /dev/null | grep -q RUNNING; then
    scontrol requeue "${job}_1" && requeued=1
    break
  fi
  squeue -h -j "${job}_1" 2> /dev/null | grep -q . || break
  sleep 0.2
done
echo "slurm test: requeued array task 1: ${requeued:-no (it finished first)}"

for _ in $(seq 900); do
  squeue -h -j "$job" 2> /dev/null | grep -q . || break
  sleep 1
done
squeue -h -j "$job" 2> /dev/null | grep -q . && fail "job $job still queued after 15 minutes"
"$tom" sweep status "$work/slurm_sweep" | tee "$work/status.txt"
grep -q "2 of 2 cells done" "$work/status.txt" || fail "not every cell finished under Slurm"
if [[ -n "$requeued" ]]; then
  log="$work/slurm_sweep/logs/slurm_${job}_1.log"
  grep -q "restart 1" "$log" || fail "array task 1 was not run again after the requeue"
  grep -Eq "^resuming|is already complete" "$log" || fail "the requeued task did not continue from its checkpoint"
  echo "slurm test: the requeued task continued from its checkpoint: $(grep -Eh "^resuming|is already complete" "$log")"
fi

# The same grid on the local backend: the same numbers.
"$tom" sweep "${grid[@]}" --jobs 2 --cores 2 --out "$work/local_sweep" > "$work/local.txt"
strip() {  # metrics.csv without the timing columns wall_s and steps_per_s
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "wall_s" || $i == "steps_per_s") drop[i] = 1 }
           { line = ""; for (i = 1; i <= NF; i++) if (!drop[i]) line = line (line == "" ? "" : ",") $i; print line }' "$1"
}
for cell in inverted_pendulum/sac/seed0 inverted_pendulum/sac/seed1; do
  if ! diff <(strip "$work/slurm_sweep/$cell/metrics.csv") <(strip "$work/local_sweep/$cell/metrics.csv"); then
    fail "$cell differs between the Slurm and the local backend"
  fi
  echo "slurm test: $cell: Slurm and local metrics equal ($(($(wc -l < "$work/local_sweep/$cell/metrics.csv") - 1)) evaluations)"
done
echo "slurm test: 1 passed, 0 failed"
