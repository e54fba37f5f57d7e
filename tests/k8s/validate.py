"""Validates deploy/k8s/*.yaml: Kubernetes objects against the Kubernetes schemas
(kubernetes-validate, strict: unknown fields are errors), KEDA ScaledObjects
against tests/k8s/scaledobject.schema.json, and checks that they fit together.
Prints a JSON summary; exits non-zero on the first fault, saying where.

    validate.py <repo root> <queues>

<queues> is a JSON object, language -> its Redis queue, as the key schema
(optimus_common::keys::queue) names them: the caller passes it, so that no key is
spelled here.
"""

import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES = "1.30.0"


def main(root, queues):
    root = pathlib.Path(root)
    schema = json.loads((root / "tests/k8s/scaledobject.schema.json").read_text())
    queues = json.loads(queues)
    languages = {l["name"] for l in json.loads((root / "config/languages.json").read_text())["languages"]}
    if set(queues) != languages:
        sys.exit(f"queues given for {sorted(queues)}, but the registry has {sorted(languages)}")
    docs = []
    for path in sorted((root / "deploy/k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    kinds = {}
    for name, doc in docs:
        where = f"{name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("kind") == "ScaledObject":
            try:
                jsonschema.validate(doc, schema)
            except jsonschema.ValidationError as e:
                sys.exit(f"{where}: {e.message} at {list(e.absolute_path)}")
        else:
            try:
                kubernetes_validate.validate(doc, KUBERNETES, strict=True)
            except kubernetes_validate.ValidationError as e:
                sys.exit(f"{where}: {e.message} at {list(e.path)}")
        kinds.setdefault(doc["kind"], []).append(doc["metadata"]["name"])

    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    for _, so in (x for x in docs if x[1]["kind"] == "ScaledObject"):
        target = so["spec"]["scaleTargetRef"]["name"]
        if target not in deployments:
            sys.exit(f"ScaledObject {so['metadata']['name']} scales {target}, which is no Deployment here")
        env = {e["name"]: e.get("value") for e in deployments[target]["spec"]["template"]["spec"]["containers"][0]["env"]}
        language = env.get("WORKER_LANGUAGE")
        trigger = so["spec"]["triggers"][0]
        if trigger["type"] != "redis" or trigger["metadata"].get("listName") != queues.get(language):
            sys.exit(f"ScaledObject {so['metadata']['name']} watches {trigger['metadata'].get('listName')}, "
                     f"not the {language} queue {queues.get(language)}")
    missing = sorted(set(queues) - {d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
                                    for d in deployments.values() if d["metadata"]["name"].startswith("worker-")})
    if missing:
        sys.exit(f"no worker Deployment for {missing}")
    print(json.dumps({"kubernetes": KUBERNETES, "kinds": kinds}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
