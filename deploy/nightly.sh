#!/bin/sh
# The nightly job of compose.yaml, installed in the image as /opt/costlake/bin/costlake-nightly:
# ingest each file in the billing drop (default /data/bills; those ingested on an earlier night are
# skipped), then publish (`costlake run`, which detects anomalies) and refresh the explanation index.
#
# - A file that cannot be ingested (a directory, an empty file, a file that is not a bill) is reported
#   in costlake's one line and does not stop the others: the night still publishes what did ingest,
#   then exits 1, so the scheduler sees the failure and the next night tries the file again.
# - A drop that is not a folder (mistyped, or not made yet) is an error: one line, exit 1. An empty
#   drop with no warehouse yet (a new deployment, before its first bill) is nothing to do: the
#   script says so and exits 0.
# - SIGTERM or SIGINT (`docker stop`) is passed to the costlake command running, which stops cleanly
#   (nothing half-published) and exits 143 / 130; this script then exits with that code. As a
#   container's PID 1 the shell would otherwise ignore the signal until the kill that follows it.
set -u
drop="${1:-/data/bills}"
if [ ! -d "$drop" ]; then  # a mistyped or unmounted drop must not pass for a quiet night
  echo "error: $drop: the billing drop is not a folder" >&2
  exit 1
fi
child=""
stop() {
  [ -n "$child" ] && kill -s "$1" "$child" 2>/dev/null
  [ -n "$child" ] && wait "$child"
  exit "$2"
}
trap 'stop TERM 143' TERM
trap 'stop INT 130' INT
step() {
  "$@" &
  child=$!
  wait "$child"
  code=$?
  child=""
  return "$code"
}
failed=0
set --
for bill in "$drop"/*; do
  [ -e "$bill" ] && set -- "$@" "$bill"  # an empty drop leaves the pattern itself: not a file
done
# Only `ingest` creates a warehouse: before the first bill arrives there is none to publish. Decided
# here only for a local folder with its own catalog.db; anything else (a remote or `file:` warehouse,
# an external catalog, the setting left to costlake.toml) is left to `costlake run`.
home="${COSTLAKE_WAREHOUSE:-}"
case "$home" in
  "" | *:*) ;;
  *) if [ $# -eq 0 ] && [ -z "${COSTLAKE_CATALOG_URI:-}" ] && [ "${COSTLAKE_CATALOG:-sql}" = sql ] \
       && [ ! -s "$home/catalog.db" ]; then
       echo "costlake-nightly: no bills in $drop and no warehouse at $home yet: nothing to do"
       exit 0
     fi ;;
esac
# One process for the whole drop; only a night with a bad file pays one process per file.
if [ $# -gt 0 ] && ! step costlake ingest -- "$@"; then
  echo "costlake-nightly: ingesting file by file, to pass over the file that failed" >&2
  for bill in "$@"; do
    step costlake ingest -- "$bill" || failed=1
  done
fi
step costlake run || exit $?
step costlake index || exit $?
exit "$failed"
