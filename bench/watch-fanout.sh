#!/usr/bin/env bash
# Watch fan-out: one PUT to 1,000 watchers, time until the last has it, on
# crafty-kv and on etcd 3.4 (one member on loopback, its JSON gateway's
# /v3/watch); and PUT throughput with 1,000 idle watchers against none.
# Prints a Markdown section on standard output.
#
# Usage: bench/watch-fanout.sh --build DIR [--quick] [OPTION]...  (see --help)
# build-aux/bench runs it; it can run alone on a build with -Dbench=true.
set -euo pipefail
export LC_ALL=C

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/build-aux/deps.sh"

usage () {
  cat <<'USAGE'
Usage: bench/watch-fanout.sh --build DIR [OPTION]...

  --build DIR         a build with -Dbench=true (crafty-kv and bench/watch-fanout)
  --quick             1 round, 20 writes per fan-out, 2 s throughput runs
  --rounds N          rounds of each measurement (default 3)
  --writes N          writes per fan-out measurement (default 50)
  --watchers N        watchers (default 1000)
  --duration SEC      length of each throughput run (default 3)
  --server-cpus LIST  CPUs for the servers, as taskset -c takes them (default 0)
  --client-cpus LIST  CPUs for the clients (default 1)
  -h, --help          show this help
USAGE
}

builddir=
rounds=3
writes=50
watchers=1000
duration=3
server_cpus=0
client_cpus=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) builddir=$2; shift ;;
    --quick) rounds=1; writes=20; duration=2 ;;
    --rounds) rounds=$2; shift ;;
    --writes) writes=$2; shift ;;
    --watchers) watchers=$2; shift ;;
    --duration) duration=$2; shift ;;
    --server-cpus) server_cpus=$2; shift ;;
    --client-cpus) client_cpus=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "watch-fanout: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$builddir" ] || { echo "watch-fanout: --build DIR is needed" >&2; exit 2; }
if [ "$(nproc)" -lt 2 ]; then
  server_cpus=0
  client_cpus=0
fi

kv_ensure_packages etcd-server wrk
kv_bin="$builddir/src/crafty-kv"
fanout_bin="$builddir/bench/watch-fanout"
load_bin="$builddir/bench/kv-load"
[ -x "$fanout_bin" ] || { echo "watch-fanout: $fanout_bin is missing: build with -Dbench=true" >&2; exit 1; }
# Both ends of the watchers' connections, and etcd's.
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d "${TMPDIR:-/tmp}/crafty-kv-watch-bench.XXXXXX")
declare -A live_pids

reap () {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "live_pids[$pid]"
}

cleanup () {
  local status=$? pid
  for pid in "${!live_pids[@]}"; do
    reap "$pid"
  done
  if [ "$status" -eq 0 ]; then rm -rf "$work"; else echo "watch-fanout: failed; logs are in $work" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die () { echo "watch-fanout: $*" >&2; exit 1; }

server_pid=
server_port=

# start_kv: crafty-kv on one thread, as in the rest of the benchmark, with
# room for the watchers.
start_kv () {
  server_port=$("$load_bin" --free-port)
  taskset -c "$server_cpus" env XDG_CONFIG_HOME="$work/config" "$kv_bin" --address 127.0.0.1 \
    --port "$server_port" --threads 1 --max-connections $((watchers + 100)) \
    --max-watchers "$watchers" >>"$work/kv.log" 2>&1 &
  server_pid=$!
  live_pids[$server_pid]=1
  "$load_bin" --wait-port "$server_port" --pid "$server_pid" --timeout 60 ||
    die "crafty-kv did not start (see $work/kv.log)"
}

# start_etcd: one member, its data in the scratch directory.
start_etcd () {
  local peer
  server_port=$("$load_bin" --free-port)
  peer=$("$load_bin" --free-port)
  rm -rf "$work/etcd"
  taskset -c "$server_cpus" etcd --data-dir "$work/etcd" --name bench \
    --listen-client-urls "http://127.0.0.1:$server_port" \
    --advertise-client-urls "http://127.0.0.1:$server_port" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >>"$work/etcd.log" 2>&1 &
  server_pid=$!
  live_pids[$server_pid]=1
  "$load_bin" --wait-port "$server_port" --pid "$server_pid" --timeout 60 ||
    die "etcd did not start (see $work/etcd.log)"
  # The port answers before the member has elected itself.
  for _ in $(seq 100); do
    curl -sf -X POST "http://127.0.0.1:$server_port/v3/kv/put" -d '{"key":"YQ==","value":"YQ=="}' \
      >/dev/null && return
    sleep 0.1
  done
  die "etcd does not take writes (see $work/etcd.log)"
}

stop_server () { reap "$server_pid"; }

# fanout TARGET ROUND: records p50_us, p99_us and median_p50_us.
fanout () {
  local out
  out=$(taskset -c "$client_cpus" "$fanout_bin" --target "$1" --port "$server_port" \
          --watchers "$watchers" --rounds "$writes") || die "the fan-out to $1 failed"
  echo "$1 $2 $out" >>"$work/fanout"
}

# put_rps: PUT throughput of the running crafty-kv, wrk -t1 -c32 as in
# the rest of the benchmark.
put_rps () {
  taskset -c "$client_cpus" wrk -t1 -c32 -d"${duration}s" -s "$top/bench/kv.lua" \
    "http://127.0.0.1:$server_port" -- put key: 1000 2>/dev/null |
    sed -n 's/.*rps=\([0-9.]*\).*/\1/p'
}

for round in $(seq "$rounds"); do
  start_kv
  fanout kv "$round"
  stop_server
  start_etcd
  fanout etcd "$round"
  stop_server

  # The same fresh server, without watchers, with them (idle: watching a
  # key that no PUT writes), and without them again: the baseline is the
  # mean of the two runs around the one with watchers.
  start_kv
  none=$(put_rps)
  coproc idle { taskset -c "$client_cpus" "$fanout_bin" --target kv --port "$server_port" \
                  --watchers "$watchers" --key idle --idle; }
  live_pids[$idle_PID]=1
  read -r ready <&"${idle[0]}" || true
  [ "${ready:-}" = ready ] || die "the idle watchers did not start"
  with=$(put_rps)
  idle_pid=$idle_PID
  exec {idle[1]}>&-
  wait "$idle_pid" 2>/dev/null || true
  unset "live_pids[$idle_pid]"
  again=$(put_rps)
  stop_server
  echo "$round $(awk -v a="$none" -v b="$again" 'BEGIN { print (a + b) / 2 }') $with" \
    >>"$work/throughput"
done

# median COLUMN FILE [FILTER]: the median of a column, over the rows whose
# first field is FILTER when given.
median () {
  awk -v c="$1" -v f="${3:-}" 'f == "" || $1 == f { print $c }' "$2" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
                             else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
field () {   # field NAME TARGET: the median of NAME=… over the fan-out rows of TARGET
  awk -v t="$2" -v n="$1" '$1 == t { for (i = 3; i <= NF; i++) { split($i, kv, "=");
        if (kv[1] == n) print kv[2] } }' "$work/fanout" | sort -g |
    awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ms () { awk -v v="$1" 'BEGIN { printf "%.2f", v / 1000 }'; }
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

kv_p50=$(field p50_us kv); kv_p99=$(field p99_us kv); kv_med=$(field median_p50_us kv)
etcd_p50=$(field p50_us etcd); etcd_p99=$(field p99_us etcd); etcd_med=$(field median_p50_us etcd)
none=$(median 2 "$work/throughput")
with=$(median 3 "$work/throughput")
r=$(ratio "$with" "$none")

cat <<REPORT
## Watch fan-out

One PUT of a key that $watchers watchers watch, $writes times in a row, on
crafty-kv (\`GET /watch?key=\`, \`--threads 1\`) and on etcd $(etcd --version | awk '/etcd Version/ { print $3 }') (one member,
its JSON gateway's \`/v3/watch\`); each server on CPUs $server_cpus, the
watchers and the writer (\`bench/watch-fanout\`) on CPUs $client_cpus. Time from
sending the PUT until the last watcher has the event (p50 and p99 over the
writes), and until the median watcher has it (p50); medians of $rounds rounds.

| | crafty-kv | etcd | crafty-kv / etcd |
|---|--:|--:|--:|
| last watcher, p50 (ms) | $(ms "$kv_p50") | $(ms "$etcd_p50") | $(ratio "$kv_p50" "$etcd_p50") |
| last watcher, p99 (ms) | $(ms "$kv_p99") | $(ms "$etcd_p99") | $(ratio "$kv_p99" "$etcd_p99") |
| median watcher, p50 (ms) | $(ms "$kv_med") | $(ms "$etcd_med") | $(ratio "$kv_med" "$etcd_med") |

PUT overwrite throughput (\`wrk -t1 -c32\`, $duration s, 100-byte values) of
one fresh crafty-kv without watchers (the mean of a run before and one
after), and with $watchers watchers of a key that no PUT writes, held open
meanwhile: $(printf '%.0f' "$none") and $(printf '%.0f' "$with") requests/s, $r × (target ≥ 0.9: $(awk -v v="$r" 'BEGIN { print (v != "n/a" && v >= 0.9) ? "met" : "not met" }')).
REPORT
