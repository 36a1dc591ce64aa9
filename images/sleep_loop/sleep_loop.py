"""abacosamples/sleep_loop: sleep in a loop, one log line per iteration (for force-quit, max_run_time
and live-log tests).

Iterations: MSG when it is an integer (or a JSON object with "iterations"), else the variable
SLEEP_LOOP_ITERATIONS, else 10. Seconds per iteration: "sleep" in a JSON message, else
SLEEP_LOOP_SECONDS, else 1. Exits 0 after the last iteration. On SIGTERM (Abaco's force-quit, docker
stop) it prints a line and exits 143 at once: as PID 1 in its container it would otherwise ignore the
signal and wait for the SIGKILL.
"""
import os
import signal
import sys
import time

from abaco_sdk import get_context


def settings() -> tuple[int, float]:
    context = get_context()
    message = context.message
    iterations = os.environ.get("SLEEP_LOOP_ITERATIONS") or 10
    seconds = os.environ.get("SLEEP_LOOP_SECONDS") or 1
    if isinstance(message, dict):
        iterations = message.get("iterations", iterations)
        seconds = message.get("sleep", seconds)
    elif isinstance(message, (int, float)) and not isinstance(message, bool):
        iterations = message
    return int(iterations), float(seconds)


def on_sigterm(signum, frame):
    print("sleep_loop: SIGTERM, exiting", flush=True)
    sys.exit(143)


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    iterations, seconds = settings()
    print(f"sleep_loop: {iterations} iterations of {seconds:g} s", flush=True)
    for i in range(1, iterations + 1):
        time.sleep(seconds)
        print(f"sleep_loop: iteration {i} of {iterations}", flush=True)
    print("sleep_loop: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
