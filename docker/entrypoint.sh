#!/bin/sh
# Entry point of the hpo image: runs its arguments, after one preparation.
#
# A Ray driver must run on a node of its cluster (ray.init finds the local raylet; with
# none it fails), so `hpo serve` and `hpo run` with HPO_RAY_ADDRESS=host:port first join
# that cluster as a node offering no CPUs and no GPUs: the trials still run on the head
# and the workers, and this container only drives them. HPO_RAY_JOIN=0 skips this (for a
# container that already is a Ray node); RAY_AUTH_MODE/RAY_AUTH_TOKEN must match the
# cluster's.
set -eu

join=0
case "${1:-} ${2:-}" in
    "hpo serve" | "hpo run") join=1 ;;
esac
case "${HPO_RAY_ADDRESS:-}" in
    "" | auto | local | ray://*) join=0 ;;
esac
if [ "${HPO_RAY_JOIN:-1}" = 0 ]; then
    join=0
fi

if [ "$join" = 1 ]; then
    ray start --address="$HPO_RAY_ADDRESS" --num-cpus=0 --num-gpus=0 \
        --object-store-memory="${HPO_RAY_OBJECT_STORE_BYTES:-200000000}" \
        --disable-usage-stats
fi
exec "$@"
