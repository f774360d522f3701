"""Repository-wide pytest configuration: makes the e2e harness importable
(`import harness`, `from harness.node import NodeStandin`, ...) and the
session-scoped `cluster` fixture available to every suite."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "e2e"))

from harness.fixtures import cluster  # noqa: E402,F401  (fixture registration)
