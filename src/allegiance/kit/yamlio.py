"""YAML loading with YAML 1.2 booleans: only true/false are booleans.

PyYAML follows YAML 1.1, where the key ``on:`` (as in ``on: order.completed``) and the values
yes/no/on/off become booleans. Program documents use ``on`` as a key, so we resolve booleans
the YAML 1.2 way.
"""

from __future__ import annotations

import re
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)
