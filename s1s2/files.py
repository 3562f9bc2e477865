"""Reading the small JSON files that ship beside models, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path


def load_json_object(path: Path, what: str, error: type[Exception], missing_hint: str) -> dict:
    """Parse `path` as a JSON object; any problem raises `error` naming `what` and the path."""
    if not path.is_file():
        raise error(f"{what} {str(path)!r} not found; {missing_hint}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{what} {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{what} {str(path)!r}: expected a JSON object")
    return data
