# Optimus's python_call harness: the program a `"harness": "python_call"` job runs,
# in place of the submission, with the submission beside it as submission.py.
#
# stdin holds one call expression, such as `add(1, 2)`. The harness loads the
# submission, evaluates the call in its namespace and writes one JSON object to
# stdout:
#   {"value": <encoded value>, "repr": "<repr of the value>"}       the call returned
#   {"raised": {"type": "ValueError", "message": "..."}}             the call raised
# The worker compares the submission's object with the reference solution's.
#
# Values are encoded so that structural equality is JSON equality: integral floats
# become ints (1.0 == 1), dicts and sets become lists sorted by their encoding,
# lists and tuples both become arrays, and an object becomes its attributes, so that
# an instance of the submission's own class equals the solution's when their states
# are equal. Exit codes: 0 a result was written; 1 the submission failed to load;
# 3 the test's input is not a Python expression.
import collections
import collections.abc
import enum
import itertools
import json
import math
import os
import sys
import traceback

SAFE_INT = 2**53
# A returned iterator is drained up to this many items.
MAX_ITEMS = 100_000
MAX_REPR = 1000


def canonical(encoded):
    return json.dumps(encoded, sort_keys=True)


def state(obj):
    """An object's attributes: its __dict__ and every __slots__ entry that is set."""
    attrs = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                attrs[name] = getattr(obj, name)
    return attrs if attrs or hasattr(obj, "__dict__") else None


def encode(x, active):
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, enum.Enum):
        return {"$enum": x.name}
    if isinstance(x, int):
        return x if -SAFE_INT < x < SAFE_INT else {"$int": str(x)}
    if isinstance(x, float):
        if not math.isfinite(x):
            return {"$float": repr(x)}
        return int(x) if x.is_integer() and abs(x) < SAFE_INT else x
    if isinstance(x, complex):
        return {"$complex": [encode(x.real, active), encode(x.imag, active)]}
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray)):
        return {"$bytes": bytes(x).hex()}
    if id(x) in active:
        return {"$cycle": type(x).__name__}
    active.add(id(x))
    try:
        if isinstance(x, (list, tuple, range, collections.deque)):
            return [encode(item, active) for item in x]
        if isinstance(x, dict):
            pairs = [[encode(k, active), encode(v, active)] for k, v in x.items()]
            return {"$dict": sorted(pairs, key=lambda pair: canonical(pair[0]))}
        if isinstance(x, (set, frozenset)):
            return {"$set": sorted((encode(item, active) for item in x), key=canonical)}
        if isinstance(x, collections.abc.Iterator):
            return [encode(item, active) for item in itertools.islice(x, MAX_ITEMS)]
        attrs = state(x)
        if attrs is not None and not callable(x):
            return {"$object": {name: encode(value, active) for name, value in sorted(attrs.items())}}
        return {"$repr": repr(x)}
    finally:
        active.discard(id(x))


def short_repr(x):
    try:
        attrs = None if type(x).__repr__ is not object.__repr__ else state(x)
        if attrs is not None:
            # The default repr names an address; the state says more.
            text = f"{type(x).__name__}({', '.join(f'{k}={v!r}' for k, v in sorted(attrs.items()))})"
        else:
            text = repr(x)
    except Exception as e:  # a broken __repr__ is the submission's business
        text = f"<{type(x).__name__} whose repr raised {type(e).__name__}>"
    return text if len(text) <= MAX_REPR else text[:MAX_REPR] + "..."


def main():
    # The result goes to the real stdout, kept aside; anything the submission
    # prints goes to stderr, so it can never be mistaken for the result.
    result = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    source = sys.stdin.read().strip()
    try:
        call = compile(source, "<test input>", "eval")
    except SyntaxError as e:
        print(f"the test's input is not a Python expression: {e}", file=sys.stderr)
        sys.exit(3)

    namespace = {"__name__": "submission", "__builtins__": __builtins__}
    sys.path.insert(0, os.getcwd())
    try:
        with open("submission.py", encoding="utf-8") as f:
            exec(compile(f.read(), "submission.py", "exec"), namespace)
    except Exception:
        traceback.print_exc()
        sys.exit(1)

    try:
        value = eval(call, namespace)
        outcome = {"value": encode(value, set()), "repr": short_repr(value)}
    except Exception as e:
        outcome = {"raised": {"type": type(e).__name__, "message": str(e)[:MAX_REPR]}}
    sys.stderr.flush()
    json.dump(outcome, result)
    result.write("\n")
    result.flush()


main()
