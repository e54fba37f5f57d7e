"""The real Judge0 and Piston clients, unchanged, against an Optimus stack.

Run by the Rust test `compat_clients` (tests/e2e/compat.rs), which starts the stack
and reads what this prints: one JSON object per scenario. Usage:

    clients.py <scenario> <base-url> [api-key]

Scenarios: judge0_run, judge0_batch, judge0_env, piston_execute.
"""

import json
import os
import sys


def judge0_client(base, key):
    import judge0

    headers = {"X-Auth-Token": key} if key else {}
    return judge0.Client(f"{base}/judge0", headers=headers)


def submission_view(sub, client=None):
    return {
        "status": sub.status.value if sub.status is not None else None,
        "stdout": sub.stdout,
        "stderr": sub.stderr,
        "time": sub.time,
        "memory": sub.memory,
        "token": str(sub.token),
        "language": client.get_language_id(sub.language) if client else None,
    }


def judge0_run(base, key):
    import judge0

    client = judge0_client(base, key)
    sub = judge0.run(
        client=client,
        source_code="name = input()\nprint(f'hello {name}')\n",
        stdin="optimus",
        language=judge0.PYTHON,
    )
    return {
        "about": client.version,
        "config_keys": len(client.config.model_dump()),
        "submission": submission_view(sub, client),
    }


def judge0_batch(base, key):
    import judge0

    client = judge0_client(base, key)
    subs = judge0.run(
        client=client,
        source_code="a, b = map(int, input().split())\nprint(a + b)\n",
        language=judge0.PYTHON,
        test_cases=[("1 2", "3"), ("10 20", "30"), ("2 2", "5")],
    )
    return {"submissions": [submission_view(s) for s in subs]}


def judge0_env(base, key):
    # The SDK's implicit client: configured only by these two variables.
    os.environ["JUDGE0_CE_ENDPOINT"] = f"{base}/judge0"
    os.environ["JUDGE0_CE_AUTH_HEADERS"] = json.dumps({"X-Auth-Token": key} if key else {})
    import judge0

    sub = judge0.run(source_code="print(sum(range(int(input()))))", stdin="10", language=judge0.PYTHON)
    return {"submission": submission_view(sub)}


def piston_execute(base, key):
    from pistonapi import PistonAPI

    piston = PistonAPI(endpoint=f"{base}/api/v2")
    runtimes = piston.runtimes
    output = piston.execute(
        language="py",
        version="3.x",
        code="import sys\nprint(input(), sys.argv[1:])\n",
        stdin="from stdin",
        args=["one", "two words"],
    )
    return {"output": output, "python": runtimes.get("python")}


SCENARIOS = {f.__name__: f for f in [judge0_run, judge0_batch, judge0_env, piston_execute]}

if __name__ == "__main__":
    scenario, base = sys.argv[1], sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else ""
    print(json.dumps(SCENARIOS[scenario](base, key)))
