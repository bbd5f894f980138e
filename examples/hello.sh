#!/bin/sh
#GSAT -N hello
# A first job: who am I, where do I run?
echo "job $GSAT_JOBID ($GSAT_JOBNAME) runs on $GSAT_O_HOST in $GSAT_O_WORKDIR, run $GSAT_RUN"
