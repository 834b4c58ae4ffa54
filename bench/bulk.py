#!/usr/bin/python3
# bulk.py: bulk loads and full scans for build-aux/bench, standard library
# only.
#
#   bulk.py txn PORT COUNT BATCH   load COUNT keys through POST /txn
#   bulk.py resp FILE COUNT        write COUNT Redis SETs for redis-cli --pipe
#   bulk.py scan PORT PAGE         list every key, PAGE at a time
#
# The keys and values are those of bench/kv-load (key:%012d, 100 bytes), so
# that every server loads the same data. Prints NAME=VALUE lines; times
# cover the requests only, not building their bodies.
import http.client
import json
import sys
import time
import urllib.parse

VALUE = "v" * 100


def key(i):
    return "bulk:%012d" % i


def txn(port, count, batch):
    bodies = []
    for start in range(0, count, batch):
        ops = [{"op": "put", "key": key(i), "value": VALUE}
               for i in range(start, min(start + batch, count))]
        bodies.append(json.dumps({"ops": ops}).encode())
    conn = http.client.HTTPConnection("127.0.0.1", port)
    t0 = time.monotonic()
    for body in bodies:
        conn.request("POST", "/txn", body)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            sys.exit("txn answered %d" % response.status)
    elapsed = time.monotonic() - t0
    print("load_s=%.2f" % elapsed)
    print("load_rps=%.0f" % (count / elapsed))


def resp(path, count):
    def bulk_string(text):
        return b"$%d\r\n%s\r\n" % (len(text), text.encode())
    with open(path, "wb") as out:
        for i in range(count):
            out.write(b"*3\r\n" + bulk_string("SET") + bulk_string(key(i)) + bulk_string(VALUE))


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
        txn(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "resp":
        resp(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "scan":
        scan(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(__doc__)
