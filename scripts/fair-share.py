#!/usr/bin/env python3
"""How a language's worker shared itself between two keys, minute by minute.

    scripts/fair-share.py REDIS_PORT LANGUAGE KEY_ID [OTHER_KEY_ID]

Reads every job record of LANGUAGE in the Redis on REDIS_PORT (scripts/soak.sh
runs it on its own Redis when SOAK_FLOOD=1) and prints, per minute from the first
job's creation: the jobs of each key that started, the slot-seconds each used, and
how many of KEY_ID's jobs were waiting at the minute's end. Then the totals over
the minutes in which both keys had a backlog (jobs waiting at the minute's start
and end): under fair share, their starts are about equal there, whatever either
key sends.
"""
import collections
import datetime
import subprocess
import sys
import time


# Jobs waiting at a minute's start and end for it to count as a backlog (one
# waiting is only a job that has just come in).
BACKLOG = 2


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    port, language, key = sys.argv[1:4]
    other = sys.argv[4] if len(sys.argv) > 4 else None
    cli = ["redis-cli", "-p", port]
    # A Redis just started from its append-only file answers LOADING a while.
    for _ in range(600):
        if subprocess.run(cli + ["ping"], capture_output=True, text=True).stdout.strip() == "PONG":
            break
        time.sleep(0.1)
    ids = subprocess.run(cli + ["--scan", "--pattern", "optimus:job:*"], capture_output=True, text=True,
                         check=True).stdout.split()
    fields = ["language", "owner", "created_at", "started_at", "finished_at"]
    commands = "".join(f"HMGET {k} {' '.join(fields)}\n" for k in ids)
    out = subprocess.run(cli, input=commands, capture_output=True, text=True, check=True).stdout.split("\n")

    def stamp(s):
        return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() if s else None

    jobs = []
    for i in range(len(ids)):
        lang, owner, created, started, finished = out[i * 5:(i + 1) * 5]
        if lang == language:
            jobs.append((owner, stamp(created), stamp(started), stamp(finished)))
    if not jobs:
        sys.exit(f"no {language} jobs in the Redis on port {port}")
    owners = [key] + ([other] if other else sorted({j[0] for j in jobs} - {key}))
    t0 = min(j[1] for j in jobs)
    minute = lambda t: int((t - t0) // 60)
    starts = collections.defaultdict(collections.Counter)
    busy = collections.defaultdict(collections.Counter)
    for owner, _, started, finished in jobs:
        if started is None:
            continue
        starts[minute(started)][owner] += 1
        at = started
        while finished and at < finished:
            end = min(finished, t0 + (minute(at) + 1) * 60)
            busy[minute(at)][owner] += end - at
            at = end

    def waiting(owner, t):
        return sum(1 for o, c, s, _ in jobs if o == owner and c <= t and (s is None or s > t))

    print(f"{language} jobs by key, per minute ({key}: the first key)")
    print("minute " + "".join(f"{o + ' started':>22}{o + ' slot-s':>22}" for o in owners) + f"{key + ' waiting':>22}")
    both = collections.Counter()
    for m in range(max(starts) + 1):
        row = "".join(f"{starts[m][o]:>22}{busy[m][o]:>22.0f}" for o in owners)
        print(f"{m:>6} {row}{waiting(key, t0 + (m + 1) * 60):>22}")
        # A backlog through the minute: jobs waiting at its start and at its end.
        if all(min(waiting(o, t0 + m * 60), waiting(o, t0 + (m + 1) * 60)) >= BACKLOG for o in owners[:2]):
            for o in owners[:2]:
                both[o] += starts[m][o]
    if len(owners) > 1 and sum(both.values()):
        print("in the minutes both had a backlog: " + ", ".join(f"{o} started {both[o]}" for o in owners[:2]))


if __name__ == "__main__":
    main()
