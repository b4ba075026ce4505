"""YAML spec documents, read as strictly as the API reads JSON bodies (pyyaml, imported only
for YAML files).

Safe loading only (a `!!python/...` tag is refused), one document, no duplicate mapping key
(the API rejects a duplicate JSON key; YAML would silently keep the last one), and aliases
bounded: the composed node graph is measured as it would be expanded before any Python
object is built, so an alias bomb ("billion laughs") is refused at once instead of becoming
a structure that explodes when it is serialised to JSON for the request.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from actlab.errors import SpecError

# Nodes a document may expand to, aliases followed. Every node costs at least two bytes of
# JSON (a value and a separator), so a document past this is over the API's default body
# limit (ACTLAB_MAX_BODY_BYTES, 1 MB) however it is written: refusing it here loses no
# request the server would take, and stops the expansion long before it costs memory.
MAX_EXPANDED_NODES = 1_000_000

MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (naming the key and its line)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue  # `<<: *base` merges; an explicit key may override a merged one
            key = self.construct_object(key_node, deep=True)
            try:
                known = key in first_line
            except TypeError:
                continue  # an unhashable key: SafeLoader's own error names it
            if known:
                first = first_line[key]
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first})",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def expanded_size(root: Node, limit: int = MAX_EXPANDED_NODES) -> int:
    """How many nodes `root` expands to with every alias followed; raises once past `limit`.

    Each distinct node is measured once (an alias is the same node object as its anchor),
    so this costs the size of the document, not of its expansion; a node that contains
    itself (`&a [*a]`) is refused, as JSON cannot hold it.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise _too_big(node, "an alias refers to a node that contains it")
        open_.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        open_.discard(key)
        if total > limit:
            raise _too_big(node, f"aliases expand it past {limit:,} nodes")
        sizes[key] = total
        return total

    return size(root)


def _too_big(node: Node, why: str) -> yaml.MarkedYAMLError:
    return yaml.MarkedYAMLError(problem=f"document refused: {why}", problem_mark=node.start_mark)


def load(text: str, where: str) -> Any:
    """The one document in `text` as Python data; `where` (the file) names it in errors."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return loader.construct_document(node)
    except RecursionError:
        raise SpecError(f"{where}: nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(_one_line(exc, where)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def _one_line(exc: yaml.MarkedYAMLError, where: str) -> str:
    """`file:line:column: problem`, the way compilers say it."""
    mark = exc.problem_mark or exc.context_mark
    place = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem and "constructor" not in exc.problem:
        problem = f"{problem} ({exc.context})"
    if "could not determine a constructor" in problem:
        tag = problem.split("tag", 1)[-1].strip(" '")
        problem = f"tag {tag!r} is not allowed: a spec is plain data (safe YAML only)"
    return f"{place}: {' '.join(problem.split())}"
