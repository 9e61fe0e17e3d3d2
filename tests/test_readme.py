"""The README opens with exactly the two commands the project promises, CI runs the second, its
generated tables (and those of the docs pages) are what results/reference generates, and every
relative link of the README and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seqgan.report.readme_tables import (
    README,
    SECTION_FILES,
    SECTIONS,
    end_marker,
    generated_files,
    readme_diff,
    start_marker,
)

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _opening_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", head, flags=re.S)]


def test_readme_opens_with_main_job_and_test_commands():
    commands = _opening_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "pip install -e ." in main_job and "snakemake" in main_job and "--cores all" in main_job
    assert "pip install -e '.[test]'" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    tests = _opening_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert tests in ci


def test_readme_is_a_front_door():
    """At most about 300 lines; the rest lives in docs/, each page linking back."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
    for page in PAGES[1:]:
        assert "](../README.md" in page.read_text(), f"{page.name} does not link back to the README"


def test_each_generated_section_lives_once_in_its_file():
    for name in SECTIONS:
        home = ROOT / SECTION_FILES[name] if SECTION_FILES[name] != README else ROOT / "README.md"
        for page in PAGES:
            text = page.read_text()
            count = 1 if page == home else 0
            assert text.count(start_marker(name)) == count and text.count(end_marker(name)) == count, (page, name)
        text = home.read_text()
        assert text.index(start_marker(name)) < text.index(end_marker(name))


def test_readme_tables_are_generated_from_the_reference_run():
    """Exactly what `seqgan readme-tables` writes from results/reference (once a reference run exists),
    in the README and in each docs page that holds a generated section."""
    reference = ROOT / "results" / "reference"
    if not (reference / "run.json").is_file():
        pytest.skip("no reference run yet (results/reference/run.json): `seqgan reference-run` makes it")
    for path, current, generated in generated_files(reference, ROOT / "README.md"):
        assert current == generated, f"{path} is stale; run `seqgan readme-tables`:\n" + readme_diff(
            current, generated, str(path)
        )


def test_readme_set_param_examples_change_the_value():
    """A `dvc exp run -S key=value` example that sets params.yaml's own value runs nothing (a user
    found the README's example doing exactly that)."""
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    examples = [m for page in PAGES for m in re.findall(r"dvc exp run -S ([\w.]+)=(\S+)", page.read_text())]
    assert examples
    for key, value in examples:
        node = params
        for part in key.split("."):
            node = node[part]
        assert yaml.safe_load(value) != node, f"docs: `dvc exp run -S {key}={value}` sets params.yaml's own value"


# ----------------------------------------------------------------------------------------------
# Links
# ----------------------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: the text of links and code kept, lowercase, punctuation other than
    '-' and '_' dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


FENCED = re.compile(r"(?ms)^(```|~~~).*?^\1[^\n]*$")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code (no links or headings there)."""
    return re.sub(r"`[^`\n]*`", "", FENCED.sub("", text))


def anchors(page: Path) -> set[str]:
    """The heading anchors of a Markdown page (a repeated heading gets -1, -2, ... as on GitHub)."""
    found: set[str] = set()
    for heading in re.findall(r"(?m)^#{1,6} +(.+?) *#*$", FENCED.sub("", page.read_text())):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def broken_links(page: Path) -> list[str]:
    """Every relative link of ``page`` (``[text](path)``, ``[text](path#anchor)``, ``[text](#anchor)``)
    whose file does not exist, or whose anchor names no heading of the Markdown file it points into."""
    broken = []
    for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", _prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...: not relative
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    return broken


def test_relative_links_lead_somewhere():
    found = {page.relative_to(ROOT).as_posix(): broken_links(page) for page in PAGES}
    assert len(PAGES) > 1 and not any(found.values()), {k: v for k, v in found.items() if v}


def test_the_link_check_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A page: `seqgan` (here)\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "README.md"
    page.write_text(
        "# Top\n\n[ok](docs/page.md) [ok](docs/page.md#a-page-seqgan-here) [ok](docs/page.md#twice-1) [ok](#top)\n"
        "[gone](docs/missing.md) [bad anchor](docs/page.md#a-page) [gone too](#nowhere) [web](https://x.org/a#b)\n"
        "`[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n```\n"
    )
    assert broken_links(page) == [
        "docs/missing.md: no such file",
        "docs/page.md#a-page: no heading with that anchor in page.md",
        "#nowhere: no heading with that anchor in README.md",
    ]


def test_the_preparation_benchmark_figures_are_the_recorded_ones():
    """docs/real-data.md quotes benchmarks/bench_prepare.py's recorded run, not remembered numbers."""
    record = (ROOT / "results" / "evidence" / "bench_prepare.txt").read_text()
    assert record.startswith("# benchmarks/bench_prepare.py --num 20000 --workers 2 --resolution 64")  # defaults
    assert "OK: peak RSS < 1 GiB" in record
    peak = re.search(r"conservative total (\d+) MiB", record).group(1)
    per_image = re.search(r"= ([\d.]+) ms per image \(= (\d+) images/s per fully available core\)", record)
    text = " ".join((ROOT / "docs" / "real-data.md").read_text().split())
    assert f"conservative peak RSS of {peak} MiB" in text
    assert f"{per_image.group(1)} ms of CPU per image, {per_image.group(2)} images/s per fully available core" in text


def _documented_seqgan_commands() -> list[tuple[str, list[str]]]:
    """(file, argv) of every `seqgan ...` command in README.md and docs/*.md: fenced lines and inline
    code spans, placeholders (<...>, [...], DIR-like words) dropped."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        spans = re.findall(r"```[a-z]*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
        for span in spans:
            for line in span.splitlines():
                for match in re.finditer(r"(?:^|[\s/(])seqgan ([a-z][a-z0-9-]+(?: [^#;&|]*)?)", line):
                    words = re.sub(r"<[^>]*>|\[[^\]]*\]|\.\.\.", " ", match.group(1)).replace("\\", " ").split()
                    found.append((path.name, words))
    return found


def test_every_documented_seqgan_command_and_option_exists():
    """A renamed command or option makes the README or a docs page stale: each `seqgan SUB --opt`
    written there must be a subcommand and an option the CLI has."""
    import argparse

    from seqgan.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = _documented_seqgan_commands()
    assert len(commands) >= 10  # the scan found the examples
    for name, (command, *rest) in commands:
        if command.endswith("-"):
            continue  # an elision such as `seqgan train-...`
        assert command in sub.choices, f"{name}: `seqgan {command}` is no command"
        options = sub.choices[command]._option_string_actions
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in options, f"{name}: `seqgan {command} {word}`: no such option"


def test_the_mutation_score_is_the_recorded_one():
    """The README's mutation figures are those of results/evidence/mutation.txt's recorded run."""
    record = (ROOT / "results" / "evidence" / "mutation.txt").read_text()
    totals = re.search(r"^totals: (\d+) mutants; killed (\d+), survived (\d+), timeout (\d+)", record, re.M)
    mutants, killed, survived, timeout = (int(v) for v in totals.groups())
    score = re.search(r"^mutation score .*: ([\d.]+)%", record, re.M).group(1)
    assert float(score) == round(100 * (killed + timeout) / (killed + timeout + survived), 1)
    text = " ".join((ROOT / "README.md").read_text().split())
    assert f"{mutants} mutants, {score} % killed" in text and f"each of the {survived} survivors" in text
