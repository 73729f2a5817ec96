"""The docs name real options: every analogtrain name in docs/aihwkit.md's mapping tables exists, and
docs/devices.md names every device field and preset and links only figures that exist, and docs/algorithms.md
shows every algorithm's current option table."""

import dataclasses
import re
from pathlib import Path

import pytest

from analogtrain.algorithms import ALGORITHMS
from analogtrain.config import TrainConfig
from analogtrain.devices import FAMILIES, PRESETS, list_presets
from analogtrain.io import IOConfig
from analogtrain.nn import AnalogLayerConfig
from analogtrain.pulses import UpdateConfig
from analogtrain.tile import ReferenceConfig, TileConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _fields(*classes) -> set:
    return {f.name for cls in classes for f in dataclasses.fields(cls)}


def known_names() -> tuple[set, set]:
    """(option and field names, named things: devices, presets, algorithms) that analogtrain accepts."""
    options = _fields(TrainConfig, UpdateConfig, IOConfig, ReferenceConfig, TileConfig, AnalogLayerConfig,
                      *FAMILIES.values())
    options |= {k for cls in ALGORITHMS.values() for k in cls.OPTIONS}
    options |= {"n_states", "arrays"}  # accepted besides the fields: make_device / configure, layer_config
    options |= {"additive", "multiplicative"}  # c2c_mode's values
    return options, set(FAMILIES) | set(PRESETS) | set(ALGORITHMS)


def analogtrain_column(text: str) -> list[str]:
    """The backticked names of the second (analogtrain) column of every table row in ``text``: an
    identifier standing alone or before ' =' (expressions, classes and dotted paths are left out)."""
    names = []
    for line in text.splitlines():
        if not line.startswith("|") or line.startswith("| ---"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        for token in re.findall(r"`([^`]+)`", cells[1]):
            head = re.split(r"\s*=", token)[0]
            if re.fullmatch(r"[a-z][a-z0-9_-]*", head):
                names.append(head)
    return names


def test_every_analogtrain_name_in_the_aihwkit_mapping_exists():
    options, named = known_names()
    names = analogtrain_column((DOCS / "aihwkit.md").read_text())
    assert len(names) > 50  # the tables were read
    unknown = sorted({n for n in names if n not in options and n not in named})
    assert not unknown, f"docs/aihwkit.md names options analogtrain does not have: {unknown}"


@pytest.mark.parametrize("bad", ["`thres_scale`", "`curved-bounds`", "`n_reads_per_transfer = 1`"])
def test_the_check_catches_a_name_that_does_not_exist(bad):
    options, named = known_names()
    row = f"| aihwkit field | {bad} | note |"
    assert [n for n in analogtrain_column(row) if n not in options and n not in named]


# ---- docs/devices.md: every device field and preset is documented ------------------------------------------
def inline_code(text: str) -> set:
    """Every `inline code` span of a markdown text (fenced blocks hold no single backticks here)."""
    return set(re.findall(r"`([^`\n]+)`", text))


def device_names() -> set:
    """What docs/devices.md must name: every dataclass field of every family, every preset and family."""
    return _fields(*FAMILIES.values()) | {p.name for p in list_presets()} | set(FAMILIES)


def undocumented(text: str, expected: set) -> list[str]:
    return sorted(expected - inline_code(text))


def linked_figures(text: str) -> list[str]:
    """Targets of the page's image links ``![alt](path)``."""
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)


def test_devices_page_names_every_field_and_preset():
    text = (DOCS / "devices.md").read_text()
    missing = undocumented(text, device_names())
    assert not missing, f"docs/devices.md does not name (as `inline code`): {missing}"


def test_devices_page_figures_exist():
    figures = linked_figures((DOCS / "devices.md").read_text())
    assert len(figures) >= 2
    absent = [f for f in figures if not (DOCS / f).is_file()]
    assert not absent, f"docs/devices.md links figures that do not exist: {absent}"


def test_the_devices_check_catches_a_gap():
    text = (DOCS / "devices.md").read_text()
    names = device_names()
    assert undocumented(text.replace("`dw_min_std`", "dw_min_std"), names) == ["dw_min_std"]
    assert undocumented(text, names | {"not_a_field"}) == ["not_a_field"]
    assert linked_figures("![x](img/none.png)") == ["img/none.png"]


# ---- docs/algorithms.md: every algorithm's option table is the code's -------------------------------------
def test_every_algorithm_option_has_a_meaning_and_a_range_in_words():
    for name, cls in ALGORITHMS.items():
        if not cls.__module__.startswith("analogtrain."):  # one a test registered (docs/extending.md)
            continue
        for key, opt in cls.OPTIONS.items():
            assert opt.help and "|" not in opt.allowed(), (name, key)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_docs_algorithms_shows_each_algorithms_current_option_table(name):
    from analogtrain.cli import algorithm_options_markdown

    text = (DOCS / "algorithms.md").read_text()
    assert f"## `{name}`" in text, f"docs/algorithms.md has no section for {name}"
    section = text.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
    assert algorithm_options_markdown(name) in section, (
        f"docs/algorithms.md's table for {name} is out of date: paste `analogtrain algorithm show {name} --markdown`")


def test_the_option_table_changes_with_the_code(monkeypatch):
    from analogtrain.cli import algorithm_options_markdown

    before = algorithm_options_markdown("agad")
    opts = dict(ALGORITHMS["agad"].OPTIONS)
    opts["tail_weightening"] = opts["tail_weightening"].but(default=7.0)
    monkeypatch.setattr(ALGORITHMS["agad"], "OPTIONS", opts)
    after = algorithm_options_markdown("agad")
    assert before != after and "| `tail_weightening` | 7 |" in after


def test_docs_algorithms_first_comparison_runs_and_prints_what_the_page_shows(capsys):
    text = (DOCS / "algorithms.md").read_text()
    section = text.split("## A first comparison", 1)[1].split("\n## ", 1)[0]
    code, shown = re.findall(r"```(?:python)?\n(.*?)```", section, re.S)[:2]
    exec(compile(code, "docs/algorithms.md", "exec"), {"__name__": "algorithms_doc"})
    printed = capsys.readouterr().out
    assert printed == shown, "docs/algorithms.md's printed output is out of date"
    dist = {" ".join(line.split("|W - W*| = ")[0].split()): float(line.split("= ")[-1]) for line in printed.splitlines()}
    analog, digital = dist.pop("analog-sgd {}"), dist.pop("digital-sgd {}")
    # what the page says: digital is best, analog SGD keeps the symmetric point's bias, the residual family
    # removes most of it (at least half of analog SGD's excess over digital)
    assert all(digital < d < digital + (analog - digital) / 2 for d in dist.values()), dist


def test_the_docs_name_only_real_experiments_and_the_readme_table_lists_every_one():
    from analogtrain.experiments import EXPERIMENTS

    pages = [DOCS.parent / "README.md", *DOCS.glob("*.md")]
    named = {m for p in pages for m in re.findall(r"`(?:analogtrain )?reproduce (p\d[a-z0-9.-]*)", p.read_text())}
    table = (DOCS.parent / "README.md").read_text().split("## Reproducing the papers")[1].split("\n## ")[0]
    rows = set(re.findall(r"^\| `(p\d-[a-z0-9.-]+)` \|", table, re.M))  # the README's table of experiments
    assert rows == set(EXPERIMENTS), (sorted(set(EXPERIMENTS) - rows), sorted(rows - set(EXPERIMENTS)))
    assert len(named) > 10 and not named - set(EXPERIMENTS), sorted(named - set(EXPERIMENTS))
