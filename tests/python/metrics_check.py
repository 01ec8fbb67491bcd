"""Reads a metrics exposition on stdin with the Prometheus project's own
Python parsers and prints its samples as JSON, one object per sample:
{"name", "labels", "value"}.

Both parsers must read it: the Prometheus text parser
(prometheus_client.parser, what the brief of the metrics endpoints names)
and the strict OpenMetrics one (prometheus_client.openmetrics.parser: the
format the endpoints declare, ending in "# EOF"), and they must agree on
every sample. Any parse error, or a disagreement, exits 1 saying what.
"""

import json
import sys

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families


def samples(families):
    out = []
    for family in families:
        for s in family.samples:
            out.append({"name": s.name, "labels": dict(s.labels), "value": s.value})
    return out


def key(s):
    return (s["name"], sorted(s["labels"].items()), s["value"])


def main():
    text = sys.stdin.read()
    try:
        prom = samples(text_string_to_metric_families(text))
    except Exception as e:  # the parser's own error says where
        print(f"the Prometheus text parser refused the exposition: {e}", file=sys.stderr)
        return 1
    try:
        om = samples(openmetrics_families(text))
    except Exception as e:
        print(f"the OpenMetrics parser refused the exposition: {e}", file=sys.stderr)
        return 1
    if sorted(map(key, prom)) != sorted(map(key, om)):
        print("the two parsers read different samples", file=sys.stderr)
        return 1
    if not prom:
        print("the exposition has no samples", file=sys.stderr)
        return 1
    json.dump(prom, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
