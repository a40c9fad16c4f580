"""The environment variables a run reads its account from, named where importing costs nothing:
``bulkrunner --help`` names the first."""

from __future__ import annotations

API_KEY_ENV = "SMARTLEAD_API_KEY"  # a secret: see bulkrunner/redaction.py
BASE_URL_ENV = "SMARTLEAD_BASE_URL"
