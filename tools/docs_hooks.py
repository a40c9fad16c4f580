"""MkDocs hooks (``hooks:`` in mkdocs.yml): the site shows ``CHANGELOG.md``, which lives at the
repository's root for those who read the repository, as its page ``changelog.md``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    files.append(File.generated(config, "changelog.md", abs_src_path=str(CHANGELOG)))
    return files
