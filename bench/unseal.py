"""How long the seal's hand-overs take (docs/operations.md "Seal and unseal"): a data directory split into 5 shares
(threshold 3) by `coffer operator init`, a server started sealed, then ROUNDS times: three shares handed in, timed
from the last share's request to the first `GET /api/status` answered `"sealed": false` by the unsealed server
(key check, services started, the listener handed over), and a seal, timed from `POST /api/v1/sys/seal` to the
first status answered sealed. Prints the median, fastest and slowest of each.

    python3 bench/unseal.py BUILD_DIR [ROUNDS]
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

TOKEN = "bench-unseal-admin-token-0123456789"


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    coffer = os.path.abspath(os.path.join(build, "coffer"))
    work = tempfile.mkdtemp(prefix="coffer-bench-unseal-")
    data = os.path.join(work, "data")
    init = subprocess.run([coffer, "operator", "init", "--shares", "5", "--threshold", "3", "--data-dir", data],
                          capture_output=True, text=True, check=True)
    shares = [l.split(": ", 1)[1] for l in init.stdout.splitlines() if l.startswith("Unseal share ")]
    port = free_port()
    log = open(os.path.join(work, "server.log"), "wb")
    proc = subprocess.Popen([coffer, "server", "--addr", "127.0.0.1:%d" % port, "--data-dir", data],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, COFFER_BOOTSTRAP_TOKEN=TOKEN))

    def call(method, path, body=None, token=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = c.getresponse()
        raw = r.read()
        c.close()
        return r.status, raw

    def wait(sealed):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, raw = call("GET", "/api/status")
                if status == 200 and json.loads(raw)["sealed"] is sealed:
                    return
            except OSError:
                pass
            time.sleep(0.0005)
        sys.exit("bench: the server did not become %s (see %s)" % ("sealed" if sealed else "unsealed", log.name))

    try:
        wait(True)
        unseal_ms, seal_ms = [], []
        for _ in range(rounds):
            for share in shares[:2]:
                call("POST", "/api/v1/sys/unseal", {"key": share})
            started = time.monotonic()
            call("POST", "/api/v1/sys/unseal", {"key": shares[2]})
            wait(False)
            unseal_ms.append((time.monotonic() - started) * 1000)
            started = time.monotonic()
            status, raw = call("POST", "/api/v1/sys/seal", token=TOKEN)
            if status != 200:
                sys.exit("bench: seal answered %d: %s" % (status, raw[:200]))
            wait(True)
            seal_ms.append((time.monotonic() - started) * 1000)
        for name, figures in (("last share -> serving unsealed", unseal_ms), ("seal -> serving sealed", seal_ms)):
            figures.sort()
            print("%-32s median %6.1f ms  fastest %6.1f ms  slowest %6.1f ms  (%d rounds)"
                  % (name, figures[len(figures) // 2], figures[0], figures[-1], len(figures)))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


if __name__ == "__main__":
    main()
