# Shared by the bench scripts (sourced, not run).
#
# Benchmarks run against their own durable cluster (fsync and synchronous_commit on, as in
# production) on port 55433, started by scripts/pg-up when it is not running, so that the test
# cluster's speed settings never flatter a figure. CLOCKWATCH_BENCH_DATABASE_URL points them at
# another server instead (an admin URL; each bench creates and drops its own database there).
export CLOCKWATCH_PG_PORT="${CLOCKWATCH_BENCH_PG_PORT:-55433}"
export CLOCKWATCH_PG_DIR="$(realpath -m "${CLOCKWATCH_BENCH_PG_DIR:-/tmp/clockwatch-bench-pg}")"
export CLOCKWATCH_PG_DURABLE=1
admin="${CLOCKWATCH_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:${CLOCKWATCH_PG_PORT}/postgres}"
CLOCKWATCH_TEST_DATABASE_URL="$admin" scripts/pg-up
# CLOCKWATCH_BENCH_LOG=1: the audit log in a database of its own (`log_database_url`) on a second
# durable cluster beside the host's (port 55437, or CLOCKWATCH_BENCH_LOG_DATABASE_URL's server):
# every run of the binary then writes events there, and $log_url names it (else $url).
log_admin=""
if [ "${CLOCKWATCH_BENCH_LOG:-0}" = 1 ]; then
  log_admin="${CLOCKWATCH_BENCH_LOG_DATABASE_URL:-postgres://postgres@127.0.0.1:55437/postgres}"
  log_port="${log_admin##*:}"
  CLOCKWATCH_PG_PORT="${log_port%%/*}" CLOCKWATCH_PG_DIR=/tmp/clockwatch-bench-log-pg \
    CLOCKWATCH_TEST_DATABASE_URL="$log_admin" scripts/pg-up
fi
# CLOCKWATCH_BENCH_CPUS="HOST LOG" (taskset CPU lists): the host's cluster and the pgbench
# clients on HOST, the log's cluster and the daemon on LOG, as if each side had a machine of its
# own (here, a core of its own); bare runs on HOST alike. $host_pin and $log_pin prefix commands.
host_pin=""; log_pin=""
# pin_cluster DIR CPUS: a running cluster's postmaster and its processes onto CPUS; backends
# forked later inherit it.
pin_cluster() {
  local pm p
  pm=$(head -1 "$1/postmaster.pid")
  for p in $pm $(pgrep -P "$pm"); do taskset -pc "$2" "$p" >/dev/null; done
}
if [ -n "${CLOCKWATCH_BENCH_CPUS:-}" ]; then
  read -r host_cpus log_cpus <<<"$CLOCKWATCH_BENCH_CPUS"
  host_pin="taskset -c $host_cpus"; log_pin="taskset -c $log_cpus"
  pin_cluster "$CLOCKWATCH_PG_DIR" "$host_cpus"
  if [ -n "$log_admin" ]; then pin_cluster /tmp/clockwatch-bench-log-pg "$log_cpus"; fi
fi
# CLOCKWATCH_BENCH_BIN: a clockwatch binary already built (the test suite's smoke run uses its own).
if [ -n "${CLOCKWATCH_BENCH_BIN:-}" ]; then
  bin="$CLOCKWATCH_BENCH_BIN"
else
  cargo build --quiet --release
  bin="$PWD/target/release/clockwatch"
fi
cfg="${CLOCKWATCH_BENCH_CONFIG:-$PWD/config/clockwatch.toml}"
# Clockwatch's schema, as that config names it.
schema=$(sed -n 's/^schema *= *"\(.*\)"/\1/p' "$cfg")

# bench_db NAME: a fresh database with the example host schema, Clockwatch installed and
# workspace 1 audited; sets $url and exports CLOCKWATCH_DATABASE_URL.
bench_db() {
  url="${admin%/*}/$1"
  log_url="$url"
  export CLOCKWATCH_DATABASE_URL="$url"
  psql -q "$admin" -c "drop database if exists $1" -c "create database $1" 2>/dev/null
  if [ -n "$log_admin" ]; then
    log_url="${log_admin%/*}/$1"
    export CLOCKWATCH_LOG_DATABASE_URL="$log_url"
    psql -q "$log_admin" -c "drop database if exists $1" -c "create database $1" 2>/dev/null
  fi
  psql -q "$url" -f tests/fixtures/host.sql -f tests/fixtures/seed.sql >/dev/null
  audit_workspace_1
}

# audit_workspace_1: Clockwatch installed in $url's database (again, after an uninstall) and
# workspace 1 audited.
audit_workspace_1() {
  "$bin" --config "$cfg" install >/dev/null 2>&1
  "$bin" --config "$cfg" enable --workspace 1 >/dev/null
}

# idle_flag_busy: the idle flag as a draining daemon leaves it. Writers under sustained load then
# do not NOTIFY, so with no daemon running this measures what the host's own statements pay
# while a daemon keeps up elsewhere.
idle_flag_busy() {
  psql -q "$url" -c "select setval('$schema.wakeup_idle', 1)" >/dev/null
}

# elapsed START: seconds since START (a `date +%s.%N` reading), to two decimals.
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }

# CLOCKWATCH_BENCH_EXPLAIN=1: the server log gets the plan of every statement over 10 ms, nested
# ones included (auto_explain), for profiling a run.
bench_explain() {
  [ "${CLOCKWATCH_BENCH_EXPLAIN:-0}" = 1 ] || return 0
  psql -q "$admin" -c "alter database $1 set session_preload_libraries = 'auto_explain'" \
    -c "alter database $1 set auto_explain.log_min_duration = 10" \
    -c "alter database $1 set auto_explain.log_nested_statements = on" \
    -c "alter database $1 set auto_explain.log_analyze = on" \
    -c "alter database $1 set auto_explain.log_level = warning"
}

# pgbench_setup: 200,000 time entries in workspace 1 for the pgbench scenarios (bench/pgbench/),
# vacuumed; sets $lo and $hi (their ids) and prints the server's durability settings.
# Expects $secs and $rounds; $clients defaults to CLOCKWATCH_BENCH_CLIENTS or 2.
pgbench_setup() {
  clients="${CLOCKWATCH_BENCH_CLIENTS:-2}"
  psql -q "$url" -c "insert into app.time_entry (workspace_id, user_id, description, start_at)
                     select 1, 1, 'entry ' || g, now() - g * interval '1 minute' from generate_series(1, 200000) g"
  psql -q "$url" -c "vacuum analyze"
  read -r lo hi < <(psql -Atq -F' ' "$url" -c "select min(id), max(id) from app.time_entry")
  echo "server: $(psql -Atq "$url" -c "select version()" | cut -d' ' -f1-2), fsync=$(psql -Atq "$url" -c 'show fsync'), synchronous_commit=$(psql -Atq "$url" -c 'show synchronous_commit'), clients=$clients, ${secs}s x $rounds rounds"
}

# tps SCENARIO [CLIENTS]: transactions per second of bench/pgbench/SCENARIO.sql for $secs seconds;
# fails, with pgbench's error, when a transaction failed (an aborted run reports no tps, or a low
# one, and would pass for a figure).
tps() {
  local c="${2:-$clients}" out
  out=$($host_pin pgbench -n -c "$c" -j "$c" -T "$secs" -D lo="$lo" -D hi="$hi" -f "bench/pgbench/$1.sql" "$url" 2>&1) || true
  if grep -q '^pgbench: error' <<<"$out" || ! grep -q '^tps = ' <<<"$out"; then
    echo "pgbench $1 failed: $(grep -m1 'ERROR\|error' <<<"$out")" >&2
    return 1
  fi
  sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out"
}

# median: the median of the numbers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
