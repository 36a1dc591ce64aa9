"""abacosamples/py3_func: run a Python function sent as a binary message, return what it returns.

Send a cloudpickled ``(func, args, kwargs)`` tuple (or upstream agavepy's ``{"func": ..., "args": ...,
"kwargs": ...}`` dict) as an application/octet-stream message; the execution's result is
``cloudpickle.dumps(func(*args, **kwargs))``. A function that raises, or a message that does not
unpickle, ends the execution with exit code 1 and the traceback in its logs. Use the cloudpickle
version of the image (images/sdk/requirements.txt) on the sending side too.
"""
import sys
import time
import traceback

import cloudpickle
from abaco_sdk import AbacoError, get_binary_message, get_context, send_bytes_result


def unpack(message):
    if isinstance(message, dict):
        return message["func"], tuple(message.get("args") or ()), dict(message.get("kwargs") or {})
    func, args, kwargs = message
    return func, tuple(args or ()), dict(kwargs or {})


def main() -> int:
    context = get_context()
    data = get_binary_message()
    try:
        func, args, kwargs = unpack(cloudpickle.loads(data))
    except Exception:
        traceback.print_exc()
        print(f"py3_func: the {len(data)}-byte message is not a cloudpickled (func, args, kwargs)", flush=True)
        return 1
    name = getattr(func, "__qualname__", repr(func))
    print(f"py3_func: execution {context.execution_id}: running {name} with {len(args)} args, "
          f"{len(kwargs)} kwargs", flush=True)
    started = time.monotonic()
    try:
        result = func(*args, **kwargs)
    except Exception:
        traceback.print_exc()
        print(f"py3_func: {name} raised after {time.monotonic() - started:.3f} s", flush=True)
        return 1
    payload = cloudpickle.dumps(result)
    try:
        send_bytes_result(payload)
    except AbacoError as e:
        print(f"py3_func: could not send the result: {e}", flush=True)
        return 1
    print(f"py3_func: {name} returned {type(result).__name__} in {time.monotonic() - started:.3f} s; "
          f"sent a {len(payload)}-byte result", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
