#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Parse a /metrics scrape with prometheus_client's own parser (Debian's
python3-prometheus-client) and print it as JSON for jq:
{"FAMILY": {"type": T, "samples": [{"name": N, "labels": {...}, "value": V}]}}.
The parser names a counter's family without its _total suffix; the key
here is the name as exposed (with _total). Exits 1 on text the parser
refuses, or on a family exposed twice."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    out = {}
    try:
        for fam in text_string_to_metric_families(text):
            name = fam.name + "_total" if fam.type == "counter" else fam.name
            if name in out:
                print(f"family {name} exposed twice", file=sys.stderr)
                return 1
            out[name] = {"type": fam.type,
                         "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                                     for s in fam.samples]}
    except ValueError as e:
        print(f"not the Prometheus text format: {e}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
