"""Run in a child process by the chart's tests: Helm's own Go SDK (libhelm in the
``helm-python-sdk`` wheel) lints or renders deploy/helm/ccrouter offline and prints the result as JSON.
A child, so that the Go runtime never lives in a test process that later forks.

    python helm_chart.py lint CHART
    python helm_chart.py render CHART RELEASE NAMESPACE  (values as JSON on stdin)
"""

from __future__ import annotations

import json
import sys

import helm_python as helm


def main(argv: list[str]) -> None:
    action, chart = argv[0], argv[1]
    if action == "lint":
        result: object = helm.lint(chart, strict=True)
    else:
        values = json.load(sys.stdin)
        with helm.Chart.load(chart) as loaded:
            result = loaded.render(values, name=argv[2], namespace=argv[3], is_install=True)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
