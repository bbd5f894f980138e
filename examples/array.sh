#!/bin/sh
#GSAT -N squares
#GSAT -t 1-4%2
# One job per index, at most two at once.
echo "$GSAT_ARRAY_INDEX squared is $((GSAT_ARRAY_INDEX * GSAT_ARRAY_INDEX)) (array $GSAT_ARRAY_ID)"
