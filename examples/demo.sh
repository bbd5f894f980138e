#!/bin/sh
# make demo: a controller on the checkout's spool/, a few example jobs, gqstat.
set -e
cd "$(dirname "$0")"
echo "GSAT_HOME=$GSAT_HOME"
gsatlc status >/dev/null 2>&1 || echo "controller started, pid $(gsatlc start)"
hello=$(gqsub hello.sh)
echo "submitted hello.sh as job $hello"
squares=$(gqsub array.sh | tr '\n' ' ')
echo "submitted array.sh as jobs $squares"
fails=$(gqsub fails.sh)
held=$(gqsub -H -N held hello.sh)
echo "submitted fails.sh as job $fails and a held job $held"
gqwait $hello $squares || true
gqwait $fails || echo "job $fails exited $? (as it should)"
echo "--- gqpeek $hello"; gqpeek "$hello"
echo "--- gqpeek $fails"; gqpeek "$fails"
echo "--- gqstat"; gqstat
echo
echo "The controller keeps running: try 'gqrls $held', 'gqstat -f $hello'."
echo "Stop it with 'make demo-stop'."
