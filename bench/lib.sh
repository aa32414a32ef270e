# Shared by the bench scripts (sourced, not run).
#
# Benchmarks run against their own durable cluster (fsync and synchronous_commit on, as in
# production) on port 55433, started by scripts/pg-up when it is not running, so that the test
# cluster's speed settings never flatter a figure. CLOCKWATCH_BENCH_DATABASE_URL points them at
# another server instead (an admin URL; each bench creates and drops its own database there).
export CLOCKWATCH_PG_PORT="${CLOCKWATCH_BENCH_PG_PORT:-55433}"
export CLOCKWATCH_PG_DIR="${CLOCKWATCH_BENCH_PG_DIR:-/tmp/clockwatch-bench-pg}"
export CLOCKWATCH_PG_DURABLE=1
admin="${CLOCKWATCH_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:${CLOCKWATCH_PG_PORT}/postgres}"
CLOCKWATCH_TEST_DATABASE_URL="$admin" scripts/pg-up
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
  export CLOCKWATCH_DATABASE_URL="$url"
  psql -q "$admin" -c "drop database if exists $1" -c "create database $1" 2>/dev/null
  psql -q "$url" -f tests/fixtures/host.sql -f tests/fixtures/seed.sql >/dev/null
  "$bin" --config "$cfg" install >/dev/null 2>&1
  "$bin" --config "$cfg" enable --workspace 1 >/dev/null
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
