#!/usr/bin/env bash
# Run the query-layer tests once per engine backend, each under its own header:
#   duckdb    the embedded default (OSE_ENGINE_URL=duckdb://)
#   postgres  a throwaway PostgreSQL server on 127.0.0.1, as a force's shared database
#   pyspark   Apache Spark in local mode through Ibis's PySpark backend (needs Java 17+)
# Usage: bash bench/backends.sh [duckdb] [postgres] [pyspark]   (default: all three)
# Installs Debian's postgresql / default-jre-headless if missing (as root, e.g. in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
QUERY_TESTS=(tests/test_query.py tests/test_properties.py tests/test_store.py tests/test_risk.py
             tests/test_tactics.py tests/test_explore.py tests/test_quality.py tests/test_training.py
             tests/test_debriefs.py tests/test_summary.py tests/test_incidents.py tests/test_adjust.py
             tests/test_exposure.py tests/test_library_postgres.py tests/test_cellkey.py
             tests/test_cellkey_tactics.py)
backends=("$@")
[ ${#backends[@]} -eq 0 ] && backends=(duckdb postgres pyspark)

# shellcheck source=bench/pg.sh
source bench/pg.sh
trap pg_stop EXIT

need_java() {
  if ! command -v java >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq default-jre-headless >/dev/null
  fi
  java -version 2>&1 | head -n 1
}

summary=()
status=0
for backend in "${backends[@]}"; do
  case "$backend" in
    duckdb) url="duckdb://" ;;
    postgres) pg_start; url=$OSE_PG_URL ;;
    pyspark) need_java; url="pyspark://local[2]" ;;
    *) echo "unknown backend $backend (use duckdb, postgres or pyspark)" >&2; exit 2 ;;
  esac
  echo
  echo "======================================================================================"
  echo "== Query-layer tests on ${backend}: OSE_ENGINE_URL=${url/:ose@/:***@}"
  echo "======================================================================================"
  log=$(mktemp)
  started=$(date +%s)
  set +e
  # The slow tests are statistical calibrations over many generated datasets: what they check does not depend on
  # the backend, and run on every backend they would take most of CI's time. They run on DuckDB in `make test`.
  OSE_ENGINE_URL=$url "$PY" -m pytest -p no:cacheprovider -m "not slow" "${QUERY_TESTS[@]}" ${PYTEST_ARGS:-} 2>&1 \
    | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  seconds=$(( $(date +%s) - started ))
  result=$(grep -E '^=+ .*(passed|failed|error).* in ' "$log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
  summary+=("${backend}: ${result:-no result} (${seconds} s wall clock)")
  if [ "$rc" -ne 0 ]; then
    status=$rc
  elif grep -Eq '^=+ .*[0-9]+ skipped' "$log"; then
    echo "${backend}: some tests were skipped; every query test must run on every backend" >&2
    status=1
  fi
  rm -f "$log"
  if [ "$backend" = postgres ]; then pg_stop; fi
done

echo
echo "== Query-layer tests per backend"
printf '   %s\n' "${summary[@]}"
exit "$status"
