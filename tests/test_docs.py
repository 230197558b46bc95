"""The docs cannot drift from the code: what they name exists, what they show is what runs.

The README and every page of the site (``docs/*.md``) are read as text: their config blocks
validate against the schema, and every make target, console script, rule, repository path and
``faceparse.*`` name they mention exists; ``--help`` of the console scripts is what the docs
show. The built site is opened in headless Chromium (slow).
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from faceparse.config_reference import keys, load_schema, reference_markdown

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))
TEXTS = [REPO / "README.md", *PAGES]
MAX_PAGE_LINES = 400
# The width --help is rendered at, for the docs and for the comparison.
HELP_COLUMNS = "100"

FENCE = re.compile(r"^(?P<indent> *)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# Repository paths: tracked top-level folders, and the root files a user is told about.
PATH = re.compile(
    r"(?<![\w./~-])((?:\.test|\.ci|bench|configs|docs|profiles|src|tests|tools|workflow)/[\w.*{},<>/-]*"
    r"|(?:config\.yaml|Makefile|pyproject\.toml|requirements\.(?:in|lock)|mkdocs\.yml|LICENSE|CHANGELOG\.md)"
    r"(?![\w/-]))"
)
DOTTED = re.compile(r"(?<![\w.])faceparse(?:\.[A-Za-z_]\w*)+")


def blocks(text: str) -> Iterator[tuple[str, str]]:
    """(info string, body) of every fenced code block, indented ones included."""
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        yield match["info"].strip(), body


def code_text(text: str) -> str:
    """Everything written as code: inline code spans and fenced blocks."""
    return "\n".join([*INLINE_CODE.findall(FENCE.sub("", text)), *(body for _, body in blocks(text))])


def _title(info: str) -> str | None:
    match = re.search(r'title="([^"]*)"', info)
    return match[1] if match else None


def config_blocks(text: str) -> Iterator[dict]:
    """The YAML blocks that are faceparse configs, or parts of one. A block titled with the
    name of another kind of file (a Snakemake profile, a partitions file) is not one."""
    for info, body in blocks(text):
        if info.split(" ")[0] != "yaml":
            continue
        data = yaml.safe_load(body)
        title = _title(info)
        if title is not None and not re.fullmatch(r"config\.yaml|(configs/runs|\.test)/[\w.-]+\.yaml", title):
            continue
        yield data


def _partial(schema):
    """The schema with every ``required`` dropped: a block may be a part of a config."""
    if isinstance(schema, dict):
        return {k: _partial(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_partial(v) for v in schema]
    return schema


def config_errors(data: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(_partial(copy.deepcopy(load_schema())))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in validator.iter_errors(data)]


def _expand(path: str) -> list[str]:
    """Globs for a path as the docs write it: {a,b} alternatives, {name} and <name> placeholders."""
    path = path.rstrip(".,:;)")
    alternatives = re.split(r"(\{[^{}]*,[^{}]*\})", path)
    parts = [p[1:-1].split(",") if p.startswith("{") and "," in p else [p] for p in alternatives]
    out = []
    for combo in itertools.product(*parts):
        glob = re.sub(r"\{[^{}]*\}|<[^<>]*>", "*", "".join(combo))
        out.append(glob)
    return out


def missing_paths(text: str) -> list[str]:
    missing = []
    for path in sorted(set(PATH.findall(code_text(text)))):
        for glob in _expand(path):
            glob = glob.rstrip("/")
            if not (any(REPO.glob(glob)) if "*" in glob else (REPO / glob).exists()):
                missing.append(path)
    return missing


def make_targets() -> set[str]:
    return set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))


def console_scripts() -> set[str]:
    import tomllib

    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def rule_names() -> set[str]:
    text = "\n".join(
        p.read_text() for p in [REPO / "workflow" / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    )
    return set(re.findall(r"^\s*rule (\w+):", text, re.M)) | set(re.findall(r"use rule \w+ as (\w+)", text))


def named_rules(text: str) -> set[str]:
    """Rules a text names: "rule `x`", "rules `x`, `y`", a table's rule column, -R/--until x."""
    names = set()
    for match in re.finditer(r"\brules? ((?:`\w+`(?:, | and | or |/)?)+)", text):
        names |= set(re.findall(r"`(\w+)`", match[1]))
    for table in re.findall(r"^\|[^\n]*\|\n\|[-|: ]+\|\n(?:\|[^\n]*\|\n?)+", text, re.M):
        rows = [[c.strip() for c in row.strip("|").split("|")] for row in table.strip().splitlines()]
        if "rule" in rows[0]:
            col = rows[0].index("rule")
            for row in rows[2:]:
                names |= {n for n in re.findall(r"`(\w+)`", row[col]) if n != "use"}
    names |= set(re.findall(r"(?:-R|--until|--forcerun|--allowed-rules) (\w+)\b(?![./])", code_text(text)))
    return names


def _module_file(parts: list[str]) -> Path | None:
    base = REPO / "src" / Path(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def unresolved_names(text: str) -> list[str]:
    """``faceparse.a.b.Name`` mentions whose module does not exist or does not define Name."""
    bad = []
    for dotted in sorted(set(DOTTED.findall(text))):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = _module_file(parts[:cut])
            if module:
                break
        rest = parts[cut:]
        if module is None or len(rest) > 2:
            bad.append(dotted)
        elif rest and not re.search(
            rf"^\s*(?:class|def) {rest[0]}\b|^\s*{rest[0]}\s*[:=]|import[^\n]*\b{rest[0]}\b",
            module.read_text(),
            re.M,
        ):
            bad.append(dotted)
    return bad


# --- the front door ---------------------------------------------------------------------


def test_readme_is_a_short_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150
    head = "\n".join(lines[:20])
    assert "make demo" in head and "make test" in head
    for name in ("LICENSE", "CHANGELOG.md", "docs/get-started.md"):
        assert f"({name})" in "\n".join(lines), f"the README links {name}"


def test_every_page_is_short_and_in_the_navigation():
    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    in_nav = {next(iter(entry.values())) for entry in nav}
    assert in_nav == {p.name for p in PAGES}
    for page in PAGES:
        assert len(page.read_text().splitlines()) <= MAX_PAGE_LINES, page.name


# --- what the docs show and name ---------------------------------------------------------


@pytest.mark.parametrize("doc", TEXTS, ids=lambda p: p.name)
def test_config_blocks_validate_against_the_schema(doc):
    for data in config_blocks(doc.read_text()):
        assert config_errors(data) == [], f"{doc.name}: a config block the schema refuses: {data}"


def test_a_wrong_config_block_is_caught():
    text = "```yaml\ntta:\n  scales: [1.0]\n  flips: true\n```\n"
    [data] = config_blocks(text)
    assert config_errors(data) and "flips" in config_errors(data)[0]
    profile = '```yaml title="~/.config/snakemake/mycluster/config.yaml"\ndefault-resources: []\n```\n'
    assert list(config_blocks(profile)) == []
    assert config_errors({"models": {"a": {"gpus": 1}}}) == []  # a part of a config


def test_the_docs_hold_config_blocks():
    assert sum(len(list(config_blocks(doc.read_text()))) for doc in TEXTS) >= 6


@pytest.mark.parametrize("doc", TEXTS, ids=lambda p: p.name)
def test_named_make_targets_exist(doc):
    named = set(re.findall(r"\bmake ([a-z][\w-]*)", code_text(doc.read_text())))
    assert named - make_targets() == set()


@pytest.mark.parametrize("doc", TEXTS, ids=lambda p: p.name)
def test_named_console_scripts_exist(doc):
    named = set(re.findall(r"\bfaceparse-[a-z]+\b", doc.read_text()))
    assert named - console_scripts() == set()


@pytest.mark.parametrize("doc", TEXTS, ids=lambda p: p.name)
def test_named_rules_exist(doc):
    assert named_rules(doc.read_text()) - rule_names() == set()


def test_the_rule_checks_can_fail():
    text = "rule `validate` and rules `train`, `nosuchrule`\n\n| step | rule |\n|---|---|\n| x | `ghost` |\n"
    assert named_rules(text) - rule_names() == {"nosuchrule", "ghost"}
    assert missing_paths("see `workflow/rules/{data,nosuch}.smk` and `configs/compact.py`") == [
        "workflow/rules/{data,nosuch}.smk"
    ]
    assert unresolved_names("`faceparse.labels.SWAP_LUT`, `faceparse.labels.NOPE`, `faceparse.nope`") == [
        "faceparse.labels.NOPE",
        "faceparse.nope",
    ]


def test_the_docs_name_the_rules_of_the_workflow():
    named = set().union(*(named_rules(doc.read_text()) for doc in TEXTS))
    assert len(named) >= 20


@pytest.mark.parametrize("doc", TEXTS, ids=lambda p: p.name)
def test_named_paths_exist(doc):
    assert missing_paths(doc.read_text()) == []


@pytest.mark.parametrize("doc", TEXTS, ids=lambda p: p.name)
def test_named_faceparse_names_exist(doc):
    assert unresolved_names(doc.read_text()) == []


# --- the console scripts' --help ---------------------------------------------------------


def help_text(main) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit), pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", HELP_COLUMNS)
        main(["--help"])
    return out.getvalue()


def documented_help(command: str) -> str:
    """The text block that follows "`command --help`" in the docs."""
    for page in PAGES:
        text = page.read_text()
        at = text.find(f"`{command} --help`")
        if at >= 0:
            info, body = next(blocks(text[at:]))
            assert info == "text", f"{page.name}: the help of {command} is shown in a text block"
            return body
    raise AssertionError(f"no page shows `{command} --help`")


def _mains():
    from faceparse.predict.parse import main as parse_main
    from faceparse.train.runs import main as runs_main

    return {"faceparse-parse": parse_main, "faceparse-runs": runs_main}


@pytest.mark.parametrize("command", ["faceparse-parse", "faceparse-runs"])
def test_help_is_short_and_what_the_docs_show(command):
    shown = help_text(_mains()[command])
    assert shown.startswith(f"usage: {command} ")
    assert len(shown.splitlines()) <= 40
    assert shown == documented_help(command)


def test_every_console_script_is_documented_with_its_help():
    assert set(_mains()) == console_scripts()


# --- the generated configuration reference ----------------------------------------------


def test_every_schema_key_has_a_description():
    undocumented = [k.path for k in keys(load_schema()) if not k.description and not k.path.endswith("<key>")]
    assert undocumented == []


def test_the_reference_lists_every_key_of_the_schema():
    table = reference_markdown()
    schema = load_schema()

    def paths(node, prefix=""):
        for name, sub in node.get("properties", {}).items():
            yield prefix + name
            yield from paths(sub, f"{prefix}{name}.")
            extra = sub.get("additionalProperties")
            if isinstance(extra, dict) and extra.get("properties"):
                yield from paths(extra, f"{prefix}{name}.<name>.")

    expected = list(paths(schema))
    assert len(expected) > 30
    for path in expected:
        assert f"| `{path}` |" in table
    assert f"| `{'rules.max_params'}` | integer or null | `null` | >= 1 |" in table


# --- the built site, as a person sees it -------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert "models.&lt;name&gt;.config" in (site / "configuration.html").read_text()


@pytest.mark.slow
def test_the_site_renders_its_navigation_and_reference(site, chromium, tmp_path):
    import _browser as browser

    nav = yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]
    titles = [next(iter(entry)) for entry in nav]
    start = browser.page_text(site / "index.html", chromium=chromium)
    for title in titles:
        assert title in start["nav"], title
    reference = browser.page_text(site / "configuration.html", chromium=chromium)
    rows = [row for row in reference["tables"] if row and row[0].startswith(("models.", "tta.", "rules."))]
    assert {"models.<name>.config", "tta.scales", "rules.max_params"} <= {row[0] for row in rows}
    assert len([r for r in reference["tables"] if r]) >= len(list(keys(load_schema())))
    shot = browser.screenshot_page(site / "index.html", tmp_path / "start.png", chromium=chromium)
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 800)
        assert len(im.convert("RGB").getcolors(1 << 16) or []) > 20  # not a blank page
