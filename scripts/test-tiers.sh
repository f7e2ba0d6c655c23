#!/usr/bin/env bash
# `make test`: every tier, in two pytest runs side by side on the machine's two cores.
#
#   lab side    -m "lab or guest"       the Compose lab and the PowerPC guest: one lab per
#                                       session, so one run, in order (its output streams here,
#                                       and its summary is printed again at the end on a failure)
#   local side  -m "not (lab or guest)" unit, loopback, fuzz smoke: no Docker (its output is
#                                       printed when it ends)
#
# Each run writes artifacts/junit-<side>.xml and every case is reported on its own. Arguments
# go to both runs (e.g. -k, -x). Exit status: 0 only if both runs passed; a run that collected
# no test (pytest's 5) is a failure unless arguments were given that may select nothing there.
#
# SHARD (the CI workflow's matrix, one runner each; docs/ci.md) runs a part only:
#   all (the default)  both sides, as above
#   lab                the lab side's lab tier:  -m "lab and not guest" (no PowerPC guest)
#   guest              the lab side's guest tier: -m guest
#   local              the local side
set -uo pipefail  # not -e: both sides run to the end, whatever the other does
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
case ${SHARD:=all} in
    all)   lab_mark="lab or guest" run_local=1 ;;
    lab)   lab_mark="lab and not guest" run_local=0 ;;
    guest) lab_mark="guest" run_local=0 ;;
    local) lab_mark="" run_local=1 ;;
    *) echo "test-tiers: SHARD must be all, lab, guest or local, not '$SHARD'" >&2; exit 2 ;;
esac
mkdir -p artifacts

started=$SECONDS
lab_rc=0 local_rc=0
if [[ $run_local -eq 1 ]]; then
    # Lab 0's: the Docker-free tiers check the docs, whose addresses are lab 0's, whichever lab
    # SOCKETLAB_LAB names for the lab side (docs/scale.md).
    env -u SOCKETLAB_LAB "$PYTEST" -m "not (lab or guest)" --junitxml=artifacts/junit-local.xml "$@" \
        >artifacts/test-local.log 2>&1 &
    local_pid=$!
fi
if [[ -n $lab_mark ]]; then
    SOCKETLAB_REQUIRE_LAB=1 SOCKETLAB_LAB_BUILD=0 \
        "$PYTEST" -m "$lab_mark" --junitxml=artifacts/junit-lab.xml "$@" 2>&1 | tee artifacts/test-lab.log
    lab_rc=${PIPESTATUS[0]}
fi
if [[ $run_local -eq 1 ]]; then
    wait "$local_pid"
    local_rc=$?
    echo
    echo "=============== local side (unit, loopback, fuzz): artifacts/test-local.log ==============="
    cat artifacts/test-local.log
fi
# The lab side's failures again, last: what a CI log shows first is its tail.
if [[ $lab_rc -ne 0 ]]; then
    echo
    echo "=============== lab side (lab, guest), its summary again: artifacts/test-lab.log ==============="
    sed -n '/short test summary info/,$p' artifacts/test-lab.log | tail -n 60
fi

args_given=$#
status=0
for side in lab local; do
    rc_var=${side}_rc
    rc=${!rc_var}
    if [[ $rc -ne 0 && ! ( $rc -eq 5 && $args_given -gt 0 ) ]]; then
        echo "test-tiers: the $side side failed (pytest exit $rc)" >&2
        status=1
    fi
done
if [[ $lab_rc -eq 5 && $local_rc -eq 5 ]]; then
    echo "test-tiers: no test ran on either side" >&2
    status=1
fi
echo "test-tiers: shard $SHARD: lab side exit $lab_rc, local side exit $local_rc, $((SECONDS - started)) s wall"
exit "$status"
