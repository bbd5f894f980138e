#!/bin/sh
#GSAT -N fails -j oe
echo "about to fail" >&2
exit 3
