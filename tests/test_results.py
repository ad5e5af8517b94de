"""What results/ and scripts/ hold: evidence a command writes, and benchmarks a user runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_results_table_starts_with_the_command_that_writes_it() -> None:
    tables = sorted(ROOT.glob("results/**/*.md"))
    assert tables
    for table in tables:
        first = table.read_text().splitlines()[0]
        assert re.match(r"(<!-- written by: |Made by `)(python scripts/\S+\.py|prune-rl report) ", first), table


def test_every_script_is_a_benchmark_the_readme_names_and_a_test_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    for script in sorted((ROOT / "scripts").glob("*.py")):
        assert script.name in readme, f"{script.name} is not named in the README"
        assert any(f'load_script("{script.stem}")' in t.read_text() for t in (ROOT / "tests").glob("test_*.py")), script


def test_the_readme_and_docs_link_only_files_that_exist() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name} links {target}"


def test_every_results_file_the_code_configs_and_docs_name_exists_or_is_named_with_its_commit() -> None:
    """A file moved out of the tree is cited as ``git show COMMIT:results/x.md``, never by a path that is gone."""
    sources = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("prune_rl/**/*.py")]
    sources += ROOT.glob("prune_rl/conf/**/*.yaml")
    for source in sources:
        for match in re.finditer(r"(\S*)\b(results/[\w./-]+\.(?:md|csv|json|png))", source.read_text()):
            prefix, path = match.groups()
            in_history = re.search(r"[0-9a-f]{7,40}:$", prefix) is not None
            assert in_history or (ROOT / path).exists(), f"{source.relative_to(ROOT)} names {path}, which is not there"
