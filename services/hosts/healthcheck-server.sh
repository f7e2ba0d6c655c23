#!/bin/sh
# Healthy when every port of the address plan is listening. (No test connection:
# the servers print the guide's line for every connection, and a probe every
# second would bury them in health-check traffic.) Three processes, sh, ss and
# awk: it runs every 30 s for as long as the lab is up (paced-check.sh).
# The ports are the `serve PORT ...` lines of server.sh, their one home.
ss -Hltn | awk -v script="${0%/*}/server.sh" '
    BEGIN {
        while ((getline line < script) > 0)
            if (split(line, word) >= 2 && word[1] == "serve" && word[2] ~ /^[0-9]+$/) want[word[2]] = ++wanted
        if (!wanted) { print "no `serve PORT` line in " script; failed = 1; exit }
    }
    { n = split($4, part, ":"); listening[part[n]] = 1 }
    END {
        if (!failed)
            for (port in want) if (!(port in listening)) { print "port " port " not listening"; failed = 1 }
        exit failed
    }'
