#!/usr/bin/env python3
"""Writes N generated reported_ips rows as CSV (for COPY) to stdout.

A realistic mix: ~90 % public IPv4, ~9 % IPv6, categories as arrays of ids (some as digit
strings or objects, some free-text tags), confidences 0-100 with some NULL, report times over
the last 20 days, and ~1 % dirty rows (junk text, CIDRs, out-of-range confidences, mapped
IPv6). The seed is fixed so two runs give the same table.
"""
import json
import random
import sys

n = int(sys.argv[1])
rng = random.Random(42)
out = sys.stdout
seen = set()


def address(i):
    r = rng.random()
    if r < 0.09:
        return "2a0%x:%x:%x::%x" % (rng.randrange(1, 16), rng.randrange(65536), i % 65536, rng.randrange(1, 65536))
    if r < 0.10:
        return rng.choice(["junk-%d" % i, "10.%d.0.0/16" % (i % 256), " 1.%d.%d.%d " % (i % 256, (i >> 8) % 256, (i >> 16) % 256), "::ffff:2.%d.%d.%d" % (i % 256, (i >> 8) % 256, (i >> 16) % 256)])
    return "%d.%d.%d.%d" % (rng.randrange(11, 223), (i >> 16) % 256, (i >> 8) % 256, i % 256)


def categories():
    r = rng.random()
    ids = rng.sample(range(1, 24), rng.randrange(1, 4))
    if r < 0.8:
        return json.dumps(ids)
    if r < 0.9:
        return json.dumps([str(x) for x in ids])
    if r < 0.95:
        return json.dumps([{"id": x} for x in ids])
    return json.dumps(["ssh-bruteforce", ids[0]])


for i in range(n):
    ip = address(i)
    if ip in seen:
        continue
    seen.add(ip)
    day = rng.randrange(0, 20)
    reported = "2026-11-%02dT%02d:%02d:00Z" % (10 + day % 20, rng.randrange(24), rng.randrange(60))
    conf = "" if rng.random() < 0.03 else str(rng.choice([rng.randrange(0, 101), rng.randrange(60, 101), -5, 250]) if rng.random() < 0.01 else rng.randrange(30, 101))
    out.write('"%s",%s,R-%d,"%s",%s,%s\n' % (ip, reported, i, categories().replace('"', '""'), conf, reported))
