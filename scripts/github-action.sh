#!/usr/bin/env bash
# The steps of action.yml: check (annotations on the pull request's SQL), then,
# with a database, verify and plan; everything summarised in $GITHUB_STEP_SUMMARY.
# Reads the INPUT_* variables action.yml sets; exits with the highest exit code.
set -uo pipefail

dir=${INPUT_DIR:-migrations}
url=${INPUT_DATABASE_URL:-}
table=${INPUT_TABLE:-schema_migrations}
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
output=${GITHUB_OUTPUT:-/dev/null}

# sqlmigrate itself: the one given, else this action's copy installed in a venv of its own
sqlmigrate=${INPUT_SQLMIGRATE:-}
if [ -z "$sqlmigrate" ]; then
  venv="${RUNNER_TEMP:-/tmp}/sqlmigrate-action-venv"
  "${INPUT_PYTHON:-python3}" -m venv "$venv" &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH" || {
      echo "::error::sqlmigrate could not be installed from $GITHUB_ACTION_PATH"; exit 1; }
  sqlmigrate="$venv/bin/sqlmigrate"
fi
export NO_COLOR=1
common=(--dir "$dir" --table "$table")
status=0
worst() { [ "$1" -gt "$status" ] && status=$1; return 0; }

strict=()
[ "${INPUT_STRICT:-false}" = "true" ] && strict=(--strict)
"$sqlmigrate" check "${common[@]}" --format github "${strict[@]}"
check=$?
worst $check
checked=$("$sqlmigrate" check "${common[@]}" "${strict[@]}" | tail -n 1)

{
  echo "## sqlmigrate"
  echo
  echo "- check: ${checked:-failed to run} (exit $check)"
} >> "$summary"

if [ -n "$url" ]; then
  export DATABASE_URL="$url"
  verified=$("$sqlmigrate" verify "${common[@]}" 2>&1)
  verify=$?
  worst $verify
  if [ $verify -ne 0 ]; then
    while IFS= read -r line; do echo "::error::verify: $line"; done <<< "$verified"
  fi
  "$sqlmigrate" plan "${common[@]}" --format github "${strict[@]}"
  plan=$?
  worst $plan
  pending=$("$sqlmigrate" status "${common[@]}" --format json |
    "${INPUT_PYTHON:-python3}" -c 'import json, sys
rows = [m for m in json.load(sys.stdin)["migrations"] if m["state"] == "pending"]
print(len(rows))
for m in rows:
    print("| {} | {} |".format(m["id"], m["name"]))')
  count=$(head -n 1 <<< "$pending")
  echo "pending=${count:-}" >> "$output"
  {
    echo "- verify: $(tail -n 1 <<< "$verified") (exit $verify)"
    echo "- plan: exit $plan (its findings are annotations on the files)"
    echo
    echo "### Pending migrations: ${count:-?}"
    echo
    if [ "${count:-0}" != "0" ]; then
      echo "| id | name |"
      echo "| --- | --- |"
      tail -n +2 <<< "$pending"
    fi
    echo
    drifted=$("$sqlmigrate" drift "${common[@]}" 2>&1)
    echo "### Schema difference: the database against what its applied migrations build (drift)"
    echo
    echo '```'
    head -n 400 <<< "$drifted"
    echo '```'
  } >> "$summary"
fi
exit "$status"
