#!/usr/bin/python3
# bulk.py: bulk loads and full scans for build-aux/bench, standard library
# only.
#
#   bulk.py txn PORT COUNT BATCH [PREFIX [random]]
#                                  load COUNT keys through POST /txn
#   bulk.py resp FILE COUNT [PREFIX [random]]
#                                  write COUNT Redis SETs for redis-cli --pipe
#   bulk.py scan PORT PAGE         list every key, PAGE at a time
#   bulk.py until-snapshot PORT DIR COUNT BATCH [PREFIX [random]]
#                                  overwrite the COUNT keys through POST /txn,
#                                  BATCH at a time, until the server in data
#                                  directory DIR starts a snapshot; then
#                                  wait, writing nothing, until it is written
#   bulk.py stats PORT             print the numbers of /stats
#   bulk.py evict DIR              drop DIR's files from the page cache
#
# Keys are PREFIX (default "bulk:") followed by a 12-digit number; with
# "key:" they are those of bench/kv-load, 16 bytes. Values are 100 bytes:
# "vvv…", or with "random" 100 characters of base64 that no compression
# shrinks, the same for every call with the same COUNT.
# Prints NAME=VALUE lines; times cover the requests only, not building
# their bodies.
import base64
import http.client
import json
import os
import random
import sys
import time
import urllib.parse

VALUE = "v" * 100
PREFIX = "bulk:"


def key(i, prefix=PREFIX):
    return "%s%012d" % (prefix, i)


def values_of(count, kind):
    if kind != "random":
        return [VALUE] * count
    # 75 bytes are 100 characters of base64, without padding.
    text = base64.b64encode(random.Random(count).randbytes(75 * count)).decode()
    return [text[100 * i:100 * (i + 1)] for i in range(count)]


def txn_bodies(count, batch, prefix, values):
    bodies = []
    for first in range(0, count, batch):
        ops = [{"op": "put", "key": key(i, prefix), "value": values[i]}
               for i in range(first, min(first + batch, count))]
        bodies.append(json.dumps({"ops": ops}).encode())
    return bodies


def post_txn(conn, body):
    conn.request("POST", "/txn", body)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit("txn answered %d" % response.status)


def txn(port, count, batch, prefix=PREFIX, kind=None):
    bodies = txn_bodies(count, batch, prefix, values_of(count, kind))
    conn = http.client.HTTPConnection("127.0.0.1", port)
    t0 = time.monotonic()
    for body in bodies:
        post_txn(conn, body)
    elapsed = time.monotonic() - t0
    print("load_s=%.2f" % elapsed)
    print("load_rps=%.0f" % (count / elapsed))


def resp(path, count, prefix=PREFIX, kind=None):
    def bulk_string(text):
        return b"$%d\r\n%s\r\n" % (len(text), text.encode())
    values = values_of(count, kind)
    with open(path, "wb") as out:
        for i in range(count):
            out.write(b"*3\r\n" + bulk_string("SET") + bulk_string(key(i, prefix)) +
                      bulk_string(values[i]))


def get_stats(conn):
    conn.request("GET", "/stats")
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit("/stats answered %d" % response.status)
    return json.loads(body)


def stats(port):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for name, value in get_stats(conn).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            print("%s=%s" % (name, value))


def log_segments(directory):
    return {name for name in os.listdir(directory) if name.startswith("log-")}


def until_snapshot(port, directory, count, batch, prefix=PREFIX, kind=None):
    # A snapshot starts with a new log segment, at the commit that found
    # the log too large: once one appears, nothing more is written, so
    # that the log after the snapshot holds only what comes next.
    conn = http.client.HTTPConnection("127.0.0.1", port)
    before = get_stats(conn)["snapshots"]
    segments = log_segments(directory)
    bodies = txn_bodies(count, batch, prefix, values_of(count, kind))
    sizes = [min(batch, count - first) for first in range(0, count, batch)]
    ops = 0
    sent = 0
    t0 = time.monotonic()
    while log_segments(directory) <= segments:
        post_txn(conn, bodies[sent % len(bodies)])
        ops += sizes[sent % len(bodies)]
        sent += 1
        if time.monotonic() - t0 > 600:
            sys.exit("no snapshot after %d overwrites" % ops)
    t1 = time.monotonic()
    while True:
        now = get_stats(conn)
        if now["snapshots"] > before:
            break
        if time.monotonic() - t1 > 600:
            sys.exit("the snapshot was not written within 600 s")
        time.sleep(0.01)
    t2 = time.monotonic()
    print("overwrites=%d" % ops)
    print("overwrite_s=%.2f" % (t1 - t0))
    print("snapshot_s=%.2f" % (t2 - t1))
    print("revision=%d" % now["revision"])
    print("snapshot_revision=%d" % now["snapshot_revision"])
    print("snapshot_bytes=%d" % now["snapshot_bytes"])


def evict(directory):
    # Clean pages only go: sync each file first.
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def scan(port, page):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    after = None
    total = 0
    pages = 0
    t0 = time.monotonic()
    while True:
        path = "/keys?limit=%d" % page
        if after is not None:
            path += "&after=" + urllib.parse.quote(after, safe="")
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit("listing answered %d" % response.status)
        keys = body.decode().splitlines()
        total += len(keys)
        pages += 1
        if len(keys) < page:
            break
        after = keys[-1]
    elapsed = time.monotonic() - t0
    print("scan_s=%.2f" % elapsed)
    print("scan_keys=%d" % total)
    print("scan_pages=%d" % pages)


if __name__ == "__main__":
    if sys.argv[1] == "txn":
        txn(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:7])
    elif sys.argv[1] == "resp":
        resp(sys.argv[2], int(sys.argv[3]), *sys.argv[4:6])
    elif sys.argv[1] == "scan":
        scan(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "until-snapshot":
        until_snapshot(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                       *sys.argv[6:8])
    elif sys.argv[1] == "stats":
        stats(int(sys.argv[2]))
    elif sys.argv[1] == "evict":
        evict(sys.argv[2])
    else:
        sys.exit(__doc__)
