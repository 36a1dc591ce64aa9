"""Self-test of abacosamples/py3_func without Abaco, run inside the image by images/samples.sh
(`docker run -i --rm --network none abacosamples/py3_func python3 - < selftest.py`): it plays the
worker's part, a FIFO with the message and a results socket, runs /func.py and checks the result."""
import os
import socket
import subprocess
import sys
import tempfile
import threading

import cloudpickle

tmp = tempfile.mkdtemp()
fifo, sock_path = os.path.join(tmp, "binary"), os.path.join(tmp, "results.sock")
os.mkfifo(fifo)
results = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
results.bind(sock_path)
results.settimeout(30)
message = cloudpickle.dumps((lambda x, y=1: {"sum": x + y}, (40,), {"y": 2}))


def write():
    with open(fifo, "wb") as f:
        f.write(message)


threading.Thread(target=write, daemon=True).start()
env = dict(os.environ, ABACO_BINARY_DATA=fifo, ABACO_RESULTS_SOCKET=sock_path, _abaco_execution_id="selftest")
run = subprocess.run([sys.executable, "/func.py"], env=env, capture_output=True, text=True, timeout=60)
sys.stdout.write(run.stdout + run.stderr)
assert run.returncode == 0, f"func.py exited {run.returncode}"
result = cloudpickle.loads(results.recv(131072))
assert result == {"sum": 42}, result
print("    abacosamples/py3_func ok")
