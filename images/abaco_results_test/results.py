"""Sample actor abacosamples/results_test: sends ABACO_TEST_RESULTS (default 1) datagrams to the
results socket, each the UTF-8 of MSG (with ":<n>" appended when there are several), sleeping
ABACO_TEST_SLEEP seconds before and after (so a test can see a result before the execution ends)."""
import os
import socket
import time

count = int(os.environ.get("ABACO_TEST_RESULTS") or 1)
pause = float(os.environ.get("ABACO_TEST_SLEEP") or 0)
message = os.environ.get("MSG", "")
time.sleep(pause)
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    for i in range(count):
        sock.sendto((message if count == 1 else f"{message}:{i}").encode(), "/_abaco_results.sock")
print(f"sent {count} result(s)")
time.sleep(pause)
