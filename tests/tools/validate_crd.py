#!/usr/bin/env python3
"""Validates a JSON document against the openAPIV3Schema of a Kubernetes CRD (first version).

Usage: validate_crd.py CRD.yaml DOCUMENT.json
Exit 0 when valid; otherwise prints the first error and exits 1.
"""
import json
import sys

import jsonschema
import yaml


def schema_of(crd):
    version = crd["spec"]["versions"][0]
    return version["schema"]["openAPIV3Schema"]


def main():
    crd_path, doc_path = sys.argv[1], sys.argv[2]
    with open(crd_path) as f:
        crd = next(d for d in yaml.safe_load_all(f) if d)
    with open(doc_path) as f:
        doc = json.load(f)
    try:
        jsonschema.Draft7Validator(schema_of(crd)).validate(doc)
    except jsonschema.ValidationError as e:
        print(f"invalid at {list(e.absolute_path)}: {e.message}")
        sys.exit(1)
    print("valid")


if __name__ == "__main__":
    main()
