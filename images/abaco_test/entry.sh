#!/bin/sh
# Sample actor (abacosamples/test, upstream's jstubbs/abaco_test): prints the message it was sent, sleeps
# ABACO_TEST_SLEEP seconds, prints its environment and exits with ABACO_TEST_EXIT.
echo "Contents of MSG: $MSG"
sleep "${ABACO_TEST_SLEEP:-0}"
echo "Environment:"
env
exit "${ABACO_TEST_EXIT:-0}"
