"""Reading the small JSON/YAML files that ship beside models and describe the cell, with errors
that name the file."""

from __future__ import annotations

import json
from pathlib import Path


def load_mapping(path: Path, what: str, error: type[Exception], missing_hint: str) -> dict:
    """Parse `path` (JSON, or YAML for .yaml/.yml) as a mapping; any problem raises `error` naming
    `what` and the path."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {str(path)!r} not found; {missing_hint}")
    yaml_file = path.suffix in (".yaml", ".yml")
    try:
        text = path.read_text()
        if yaml_file:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # OSError, UnicodeDecodeError, JSONDecodeError, YAMLError
        raise error(f"{what} {str(path)!r} is not valid {'YAML' if yaml_file else 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{what} {str(path)!r}: expected a {'mapping' if yaml_file else 'JSON object'}")
    return data
