#!/bin/sh
# A failover test as a CI gate: run YOUR program through an Aurora failover and an RDS one in a
# local lab, and fail the build when its measured write gap, lost writes or recovery miss the mark.
# Usage: sh failover-gate.sh COMMAND [ARGS...]   (default: the mysql client writing in a loop to each database)
set -u
LAB_DIR=${LAB_DIR:-$(mktemp -d)/lab}
OUT=${OUT:-failover-results}
mkdir -p "$OUT"
if [ $# -eq 0 ]; then
  # the stock mysql client in a loop, one connection per write, for 45 s, one loop per database
  # (Aurora and RDS: a failover of a database the program never wrote to is "not measured", and
  # fails --expect recovered); it has no read timeout of its own: `timeout 5` ends a run stuck on a
  # fenced writer, as a job runner would
  set -- sh -c 'loop() { end=$(($(date +%s)+45)); while [ $(date +%s) -lt $end ]; do
    timeout 5 mysql --connect-timeout=2 -h "$1" -u "$FISWATCH_LAB_USER" "$FISWATCH_LAB_DATABASE" \
      -e "CREATE TABLE IF NOT EXISTS ci_writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(3));
          INSERT INTO ci_writes (at) VALUES (NOW(3))" 2>/dev/null
    sleep 0.1; done; }
    loop "$FISWATCH_LAB_AURORA_HOST" & loop "$FISWATCH_LAB_RDS_HOST" & wait'
fi
fiswatch lab exec --dir "$LAB_DIR" \
  --failover aurora@5 --failover rds@25 \
  --expect aurora:max-gap=15 --expect lost=0 --expect recovered \
  --junit "$OUT/failover.xml" --json "$OUT/failover.json" --record "$OUT/failover.jsonl" \
  -- "$@"
code=$?
fiswatch report "$OUT/failover.jsonl" > "$OUT/failover.txt" || true
case $code in
  0) echo "failover gate: passed" ;;
  3) echo "failover gate: an expectation failed (see above and $OUT/failover.xml)" ;;
  *) echo "failover gate: the program or lab exec failed with exit code $code" ;;
esac
exit $code
