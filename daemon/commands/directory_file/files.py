"""Reading and parsing a directory file: its size, encoding and format, and YAML that
refuses anchors, aliases and merge keys before they cost memory. The data comes out
unvalidated, with the repeated keys and unquoted scalars that validation reports, and
with the account ids it names as far as they can be read before validation."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

# A directory of a few hundred thousand users fits easily; beyond this a file is a
# mistake or an attack, and PyYAML would spend minutes and gigabytes on it.
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
FORMATS: Final = MappingProxyType({".yaml": "yaml", ".yml": "yaml", ".json": "json"})


class FileProblem(Exception):
    """The file cannot be read or parsed; the message says why, without the path."""


class _Mapping(dict[Any, Any]):
    """A parsed mapping that keeps what a plain dict forgets: keys given more than once
    (a parser keeps only the last, silently dropping data) and the text of unquoted
    YAML scalars that did not become strings (``postal_code: 01234`` reads as 668)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[Any] = []
        self.sources: dict[Any, str] = {}

    def put(self, key: Any, value: Any, source: str | None = None) -> None:
        if key in self:
            self.duplicates.append(key)
        self[key] = value
        self.sources.pop(key, None)
        if source is not None:
            self.sources[key] = source

    @classmethod
    def from_pairs(cls, pairs: list[tuple[Any, Any]]) -> _Mapping:
        mapping = cls()
        for key, value in pairs:
            mapping.put(key, value)
        return mapping


class _Sequence(list[Any]):
    """A parsed YAML list that keeps the text of its unquoted non-string items."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: dict[int, str] = {}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors, aliases or merge keys.

    An alias is how a few hundred bytes expand into gigabytes ("billion laughs"), and
    a directory file has no use for one: refusing them while composing stops the
    expansion before it starts.
    """

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML anchors and aliases (& and *) are not allowed in a directory file",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _plain_source(node: yaml.Node, value: object) -> str | None:
    # A plain scalar's style is None from PyYAML's reader and "" from libyaml's.
    plain = isinstance(node, yaml.ScalarNode) and not node.style and node.value != ""
    return str(node.value) if plain and not isinstance(value, str) else None


def _construct_mapping(loader: Any, node: yaml.Node) -> _Mapping:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a mapping node", node.start_mark
        )
    mapping = _Mapping()
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise yaml.constructor.ConstructorError(
                None, None, "YAML merge keys (<<) are not allowed", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            )
        value = loader.construct_object(value_node, deep=True)
        mapping.put(key, value, _plain_source(value_node, value))
    return mapping


def _construct_sequence(loader: Any, node: yaml.Node) -> _Sequence:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "expected a sequence node", node.start_mark
        )
    sequence = _Sequence()
    for index, item_node in enumerate(node.value):
        value = loader.construct_object(item_node, deep=True)
        sequence.append(value)
        source = _plain_source(item_node, value)
        if source is not None:
            sequence.sources[index] = source
    return sequence


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)

# libyaml (bundled in PyYAML's wheels) reads a large file ten times faster than the
# pure-Python reader, but composes in C, where anchors and aliases cannot be refused
# as they are met. So it reads only a text in which no anchor or alias can hide (no
# "&" or "*" where a node may start), its node graph is checked to share no node (an
# alias), and whatever it refuses (or a text with a tab, which the pure reader refuses
# where libyaml does not) is read again by the pure-Python reader: every error message
# stays that reader's. tests/unit/test_directory_yaml_fast.py compares the two.
_MAYBE_ANCHOR: Final = re.compile(r"(?:^|[\s\[\]{},:?!-])[&*]", re.MULTILINE)
_CLoader: type[yaml.CSafeLoader] | None = getattr(yaml, "CSafeLoader", None)
if _CLoader is not None:

    class _FastLoader(_CLoader):  # type: ignore[valid-type,misc]  # absent without libyaml
        pass

    _FastLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _FastLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class _Fallback(Exception):
    """The fast reader cannot vouch for the text: the pure-Python reader takes it."""


_STR: Final = "tag:yaml.org,2002:str"
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"


def _build(loader: Any, node: yaml.Node, seen: set[int]) -> object:
    """The data of libyaml's nodes, as the pure reader's constructors make it, with the
    common cases (strings, mappings, lists) built directly; a node met twice (an alias),
    a merge key, a complex key or a tagged collection is left to the pure reader."""
    if id(node) in seen:
        raise _Fallback
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR else loader.construct_object(node, deep=True)
    if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
        mapping = _Mapping()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Fallback
            key = _build(loader, key_node, seen)
            if not isinstance(key, Hashable):
                raise _Fallback
            value = _build(loader, value_node, seen)
            mapping.put(key, value, _plain_source(value_node, value))
        return mapping
    if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
        sequence = _Sequence()
        for index, item_node in enumerate(node.value):
            value = _build(loader, item_node, seen)
            sequence.append(value)
            source = _plain_source(item_node, value)
            if source is not None:
                sequence.sources[index] = source
        return sequence
    raise _Fallback


def _fast_yaml(text: str) -> object:
    # Tabs: the pure reader refuses them where libyaml takes them as spaces.
    if _CLoader is None or "\t" in text or _MAYBE_ANCHOR.search(text):
        raise _Fallback
    try:
        loader = _FastLoader(text)
    except ValueError:  # a lone surrogate libyaml cannot be given as UTF-8
        raise _Fallback from None
    try:
        node = loader.get_single_node()
        return None if node is None else _build(loader, node, set())
    except (yaml.YAMLError, RecursionError, ValueError):
        raise _Fallback from None
    finally:
        loader.dispose()


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileProblem(
            f"cannot tell the format from the extension {path.suffix or '(none)'!r}: "
            "use .yaml, .yml or .json"
        )
    return fmt


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.problem and exc.context else ""
        if mark is not None:
            return (
                f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: "
                f"{problem}{context}"
            )
        return f"invalid YAML: {problem}{context}"
    return "invalid YAML: " + " ".join(str(exc).split())


def parse(text: str, fmt: str) -> object:
    """The data of a YAML or JSON text; :class:`FileProblem` says why there is none."""
    try:
        if fmt == "json":
            return json.loads(text, object_pairs_hook=_Mapping.from_pairs)
        try:
            return _fast_yaml(text)
        except _Fallback:
            return yaml.load(text, Loader=_Loader)  # noqa: S506  a SafeLoader with less
    except json.JSONDecodeError as exc:
        raise FileProblem(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise FileProblem(_yaml_problem(exc)) from None
    except RecursionError:
        raise FileProblem(f"invalid {fmt.upper()}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise FileProblem(f"invalid {fmt.upper()}: {exc}") from None


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n % mib == 0 else f"{n} bytes"


def read_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file as text, refusing more than ``max_bytes`` without reading them all."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise FileProblem(f"the file is larger than the limit of {_size(max_bytes)}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (invalid byte at offset {exc.start})") from None


def load(path: Path, max_bytes: int = MAX_FILE_BYTES) -> object:
    """The data of a directory file, not yet validated."""
    fmt = file_format(path)
    return parse(read_text(path, max_bytes), fmt)


def account_ids(data: object) -> list[str]:
    """The account ids a file names, as far as they can be read before validation:
    the import loads their database state first, to check references against it."""
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list):
        return []
    return sorted(
        {
            a["account_id"]
            for a in data["accounts"]
            if isinstance(a, dict) and isinstance(a.get("account_id"), str)
        }
    )
