"""The `visor` command: output, exit codes, and no tracebacks."""

from __future__ import annotations

import re
import time
from pathlib import Path

from conftest import run_cli as run


def test_ingest_info_rm(tmp_path: Path, demo_root: Path) -> None:
    r = run(tmp_path, "ingest", str(demo_root), "--name", "shapes", "--thumbnails")
    assert r.returncode == 0, r.stderr
    assert "ingested shapes: 40 samples" in r.stdout
    assert len(list((tmp_path / "thumbnails").rglob("*.jpg"))) == 40
    r = run(tmp_path, "info", "shapes")
    assert "train" in r.stdout and "circle" in r.stdout
    assert "shapes" in run(tmp_path, "datasets").stdout
    jobs = run(tmp_path, "jobs", env={"COLUMNS": "80"}).stdout
    (line,) = [line for line in jobs.splitlines() if "│ ingest" in line]  # one line a job
    # The message is cut to the width the columns before it leave, never those columns.
    assert re.search(
        r"^│ [0-9a-f]{12} │ ingest +│ shapes +│ done +│ 40/40 +│ ingested shap\S* ", line
    )
    assert line.endswith("… │") and len(line) == 80
    assert run(tmp_path, "rm", "shapes").returncode == 0
    assert "shapes" not in run(tmp_path, "datasets").stdout


def test_errors_are_one_line_and_exit_1(tmp_path: Path, demo_root: Path) -> None:
    for args, message in [
        (("ingest", str(tmp_path / "missing"), "--name", "x"), "no such file or directory"),
        (("info", "nope"), "dataset 'nope' not found"),
        (("ingest", str(demo_root), "--name", "bad name"), "dataset name 'bad name'"),
    ]:
        r = run(tmp_path, *args)
        assert r.returncode == 1, r
        assert message in r.stderr
        assert "Traceback" not in r.stderr + r.stdout


def test_demo_without_serving(tmp_path: Path) -> None:
    # No weights here and no hub: the demo says so and embeds with random weights.
    offline = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    r = run(tmp_path, "demo", "--images", "30", "--no-serve", env=offline)
    assert r.returncode == 0, r.stderr
    assert "ingested demo: 30 samples" in r.stdout
    assert "the demo uses random:dinov2-small instead" in r.stderr
    assert "embedded 30 images with random:dinov2-small (384-d" in r.stdout
    assert "map 1: umap of 30 points" in r.stdout
    # Random weights: the threshold comes from the data, and the last lines say what to do.
    assert re.search(r"threshold 0\.9\d* \(from this dataset.s nearest-", r.stdout)
    assert re.search(r"\d+ duplicate groups \(\d+ exact\)", r.stdout)
    assert r.stdout.count("warning: random:dinov2-small has random weights") == 1
    assert "has random weights, so the map, neighbours and duplicates above show" in r.stdout
    assert "run visor embed demo --model dinov2-base" in r.stdout
    # Again: the finished demo is found, not built again; --fresh builds it again.
    started = time.monotonic()
    again = run(tmp_path, "demo", "--images", "30", "--no-serve", env=offline)
    assert again.returncode == 0 and "the demo demo is finished (30 images" in again.stdout
    assert "ingested" not in again.stdout and time.monotonic() - started < 15
    fresh = run(tmp_path, "demo", "--images", "30", "--no-serve", "--fresh", env=offline)
    assert fresh.returncode == 0 and "ingested demo: 30 samples" in fresh.stdout
    # In one process (a notebook, a test runner), each command warns again: once a command,
    # not once a process.
    from typer.testing import CliRunner

    from visor.cli import app
    from visor.config import get_settings

    get_settings.cache_clear()  # this process's settings may be another test's
    try:
        for _ in range(2):
            said = CliRunner().invoke(
                app, ["similar", "demo", "0", "-k", "3"], env={"VISOR_HOME": str(tmp_path)}
            )
            assert said.exit_code == 0, said.output
            assert said.stdout.count("warning: random:dinov2-small has random weights") == 1
    finally:
        get_settings.cache_clear()


def test_the_readme_names_only_commands_and_options_there_are() -> None:
    """Every `visor CMD --option` the README shows (its command list and its text) is a
    command with that option: a renamed or dropped option fails here, not a reader."""
    import typer

    from visor.cli import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    text = (Path(__file__).parents[1] / "README.md").read_text()
    shown = re.findall(r"`(visor [^`]+)`", text)
    shown += [line.strip() for line in text.splitlines() if line.strip().startswith("visor ")]
    wrong = []
    for line in shown:
        words = line.split("#")[0].split()
        if len(words) < 2 or words[1].startswith("-") or "/" in words[1]:
            continue  # `visor --help`; prose naming several commands at once
        command = commands.get(words[1])
        if command is None:
            wrong.append(f"no command {words[1]}: {line}")
            continue
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        wrong += [
            f"visor {words[1]} has no {flag}: {line}"
            for flag in re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", line.split("#")[0])
            if flag not in options | {"--help"}
        ]
    assert len(shown) > 100 and not wrong, wrong
