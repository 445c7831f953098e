"""Refuse YAML whose aliases would expand into a huge document (a "billion laughs" bomb), without expanding it.

    python -c "from mnistctl.yaml_guard import check_yaml_text; check_yaml_text(open('c.yaml').read(), 'c.yaml')"

PyYAML lets an anchor and its aliases share one object, so loading a bomb is cheap; whatever walks the
result afterwards (jsonargparse copies and validates every value) visits each alias anew and runs
out of memory: nine levels of nine aliases are 387 million strings. Here the document is composed
into PyYAML's node graph (memory and time linear in the text, aliases shared) and its size *as
expanded* is counted with each shared node counted once per use but computed once. Anything over
MAX_NODES is refused. `guard_jsonargparse()` puts the same check in front of jsonargparse's YAML
loader, so config files, nested class configs, values given on the command line and environment
variables are all covered, not only the `--config` files mnistctl reads first.
"""

from __future__ import annotations

import yaml

from mnistctl.errors import UsageError

# A full `mnistctl fit --print_config` is about 300 nodes; a sweep's job config about the same.
MAX_NODES = 100_000


_TOO_LARGE = (
    f"expands to more than {MAX_NODES:,} values through its aliases (*name), a 'billion laughs' pattern; "
    "write the values out or use fewer aliases"
)


class YAMLTooLarge(UsageError):
    """A YAML document that expands to more than MAX_NODES nodes, or into itself. Not a yaml.YAMLError on
    purpose: jsonargparse would take that as "not YAML" and go on with the text as a plain string."""


def expanded_nodes(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """The number of nodes `root` has once every alias is expanded; counts saturate just above `limit`."""
    size: dict[int, int] = {}
    open_: set[int] = set()  # nodes whose children are being counted: meeting one again is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # post-order without recursion: a deeply nested document cannot overflow the stack
        node, children_done = stack.pop()
        if children_done:
            open_.discard(id(node))
            size[id(node)] = min(limit + 1, 1 + sum(size[id(k)] for k in _children(node)))
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise YAMLTooLarge("YAML: a value contains itself through an alias (*name): it has no finite expansion")
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)
    return size[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_yaml_text(text: str, source: str) -> None:
    """Raise YAMLTooLarge if any document in `text` expands past MAX_NODES; syntax errors raise yaml.YAMLError."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for document in yaml.compose_all(text, Loader=loader):
        if document is not None and expanded_nodes(document) > MAX_NODES:
            raise YAMLTooLarge(f"{source} {_TOO_LARGE}")


def guard_jsonargparse() -> None:
    """Make every YAML load of jsonargparse refuse what check_yaml_text refuses, before constructing anything.

    jsonargparse loads YAML through one Loader class of its own (`get_yaml_default_loader`), from its
    `yaml` loader and from the helpers that bypass it; its `construct_document` turns the composed node
    graph into Python objects, so checking the graph there covers every path and parses nothing twice.
    """
    from jsonargparse._loaders_dumpers import get_yaml_default_loader

    loader = get_yaml_default_loader()
    if getattr(loader, "mnistctl_guarded", False):
        return
    construct = loader.construct_document

    def construct_document(self, node: yaml.Node):
        if expanded_nodes(node) > MAX_NODES:
            raise YAMLTooLarge(f"a YAML value {_TOO_LARGE}")
        return construct(self, node)

    loader.construct_document = construct_document
    loader.mnistctl_guarded = True
