"""Fill the ${NAME} placeholders of a Fast DDS XML profile (deploy/dds/*.xml) from the environment.

Addresses live in one env file per machine (deploy/*.env), not in the XML. The container
entrypoint runs `python3 docker/dds_profile.py TEMPLATE OUT` and points
FASTRTPS_DEFAULT_PROFILES_FILE at OUT. A missing variable or a malformed result stops the
container with one line naming it, instead of a participant that silently discovers nothing.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def placeholders(text: str) -> list[str]:
    """Names of the ${NAME} placeholders in `text`, sorted, without duplicates."""
    return sorted(set(PLACEHOLDER.findall(text)))


def render(text: str, env: Mapping[str, str]) -> str:
    """`text` with every ${NAME} replaced by env[NAME]; raises ValueError naming what is missing."""
    missing = [name for name in placeholders(text) if not env.get(name)]
    if missing:
        raise ValueError(f"set {', '.join(missing)} (e.g. in deploy/robot.env or deploy/server.env)")
    out = PLACEHOLDER.sub(lambda m: env[m.group(1)], text)
    try:
        ElementTree.fromstring(out)
    except ElementTree.ParseError as exc:
        raise ValueError(f"rendered profile is not well-formed XML: {exc}") from exc
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: dds_profile.py TEMPLATE OUT", file=sys.stderr)
        return 2
    template, out = Path(argv[0]), Path(argv[1])
    try:
        text = render(template.read_text(), os.environ)
    except (OSError, ValueError) as exc:
        print(f"[s1s2] DDS profile {template}: {exc}", file=sys.stderr)
        return 2
    out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
