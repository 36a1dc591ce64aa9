#!/bin/sh
# Sample actor abacosamples/engine_test.
#  - With ABACO_TEST_SCRIPT set (e.g. in the actor's default_environment), runs it with sh -c: the
#    tests use this to write into mounts, print `id`, post the actor's state with wget, use memory.
#  - Otherwise, for a binary message, reads /_abaco_binary_data to its end and prints its size and
#    sha256; for any other message prints MSG.
if [ -n "$ABACO_TEST_SCRIPT" ]; then
    exec sh -c "$ABACO_TEST_SCRIPT"
fi
if [ -p /_abaco_binary_data ]; then
    cat /_abaco_binary_data >/tmp/binary_message || exit 2
    echo "binary size: $(wc -c </tmp/binary_message)"
    echo "binary sha256: $(sha256sum /tmp/binary_message | cut -d' ' -f1)"
    rm -f /tmp/binary_message
else
    echo "no binary message; MSG: $MSG"
fi
