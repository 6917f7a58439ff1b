#!/usr/bin/env python3
"""Sends N lines of the labelled corpus (testdata/corpus, the 16 systems round-robin) to a
`logflux up` agent's socket as entries over the last hour, then flushes: a realistic stack
for `logflux patterns` figures (docs/benchmarks.md, "Patterns").

    source logflux-up/up.env
    python3 tools/corpus/fill.py 1000000

Each entry's payload is the corpus line whole (header included, as the agent keeps a line),
its level the label's (info when the line has none), its source `corpus-<system>`.
"""

import json
import os
import socket
import sys
import time

SYSTEMS = ["hdfs", "hadoop", "spark", "zookeeper", "openstack", "bgl", "hpc", "thunderbird",
           "windows", "linux", "mac", "android", "healthapp", "apache", "openssh", "proxifier"]
LEVELS = {"emergency": 1, "alert": 2, "critical": 3, "error": 4, "warning": 5, "notice": 6,
          "info": 7, "debug": 8}
BATCH = 5000


def load(corpus):
    out = []
    for s in SYSTEMS:
        with open(os.path.join(corpus, s + ".log"), encoding="utf-8") as f:
            lines = f.read().split("\n")[:-1]
        with open(os.path.join(corpus, s + ".labels.jsonl"), encoding="utf-8") as f:
            labels = [json.loads(l) for l in f]
        out.append([(line, LEVELS.get(lab["level"] or "info", 7)) for line, lab in zip(lines, labels)])
    return out


def send(path, data):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    sock = os.environ.get("LOGFLUX_AGENT_SOCKET")
    if not sock:
        sys.exit("LOGFLUX_AGENT_SOCKET is not set: `source logflux-up/up.env` first")
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "corpus")
    systems = load(corpus)
    now_ms = int(time.time() * 1000)
    for done in range(0, n, BATCH):
        lines = []
        for i in range(done, min(n, done + BATCH)):
            k = i % len(systems)
            line, level = systems[k][(i // len(systems)) % len(systems[k])]
            ts_ms = now_ms - 3_600_000 + i * 3_590_000 // n
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + ".%03dZ" % (ts_ms % 1000)
            lines.append(json.dumps({"payload": line, "source": "corpus-" + SYSTEMS[k], "entryType": 1,
                                     "logLevel": level, "timestamp": ts}))
        send(sock, ("\n".join(lines) + "\n").encode())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock)
        s.sendall(b'{"action":"flush"}\n')
        s.recv(65536)


if __name__ == "__main__":
    main()
