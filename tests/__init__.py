"""The test suite: ``unit/`` mirrors the package, ``e2e/`` runs the CLI on real time (slow by
its folder), ``acceptance/`` holds the long checks run apart, ``project/`` checks the house."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project's root
