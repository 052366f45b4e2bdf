"""One definition per operation: the same call gives the same answer from Python, the CLI
and HTTP, with and without a running `visor serve` (real processes, the real corpus)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server, run_cli
from pydantic import BaseModel, TypeAdapter

import visor
from visor import ops
from visor.api.schema import document
from visor.cli import app
from visor.client import RemoteWorkspace
from visor.dataset import Dataset
from visor.errors import InvalidInput
from visor.ops.base import JobFailed
from visor.workspace import Workspace, Workspaces

TINY = "random:dinov2-tiny"
YOLO = Path(__file__).parent / "data" / "yolo_roboflow_trees"

# Ground truth as a model's predictions: every box of the dataset, score 0.9 (SQL over the
# store, written as the table import-predictions reads).
AS_PREDICTIONS = """
SELECT s.path AS file_name, l.class, l.x, l.y, l.w, l.h, 0.9 AS score
FROM labels l JOIN samples s ON s.dataset_id = l.dataset_id AND s.id = l.sample_id
WHERE l.kind = 'gt' AND l.x IS NOT NULL ORDER BY l.id
"""


@pytest.fixture(params=["direct", "served"], scope="module")
def mode(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A workspace with the YOLO corpus embedded and ground truth imported as predictions,
    used directly or through a server."""
    home = tmp_path_factory.mktemp(request.param) / "home"
    server = Server(home).start() if request.param == "served" else None
    try:
        yield request.param, home, server
    finally:
        if server is not None:
            server.stop()


def cli(home: Path, *args: str, ok: bool = True) -> str:
    """The command's output; with ok=False it must fail, and its one-line error is returned."""
    done = run_cli(home, *args)
    assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return done.stdout if ok else done.stderr


@pytest.mark.timeout(900)  # some 30 commands, each a new process: minutes on a busy machine
def test_every_command_in_both_modes(mode: tuple, tmp_path: Path) -> None:
    """Each command of the CLI, on the corpus, directly on the store and through a server."""
    name, home, _ = mode
    used: set[str] = set()
    printed: list[str] = []

    def run(*args: str) -> str:
        used.add(args[0])
        printed.append(cli(home, *args))
        return printed[-1]

    assert "ingested y: 7 samples, 101 labels (yolo)" in run("ingest", str(YOLO), "--name", "y")
    assert "y" in run("datasets") and "7 samples, 101 labels" in run("info", "y")
    out = run("embed", "y", "--model", TINY, "--precision", "fp32")
    assert "embedded 7 images with random:dinov2-tiny (64-d, cpu, fp32)" in out
    assert "map 1: pca of 7 points" in run("map", "y", "--method", "pca")
    out = run("clusters", "y")
    assert "map 1 has 7 points, fewer than the minimum cluster size 10: no clusters" in out
    out = run("clusters", "y", "--map", "1", "--min-cluster-size", "2")
    assert re.search(r"map 1: \d+ clusters of at least 2 points among 7 \(\d+ in none\)", out)
    assert "random weights" in run("similar", "y", "0", "-k", "3")
    assert "nearest-neighbour similarity of 7 samples" in run("duplicates", "y")
    assert "uniqueness of 7 samples (k=2" in run("uniqueness", "y", "-k", "2")
    assert "index of 7 vectors (1 list, 1 probed per query)" in run("index", "y")
    assert "7 images measured: no issues" in run("quality", "y")
    with visor.open(home) as ws:
        assert isinstance(ws, RemoteWorkspace) == (name == "served")
        table = ws.sql(AS_PREDICTIONS)
    assert table.num_rows == 101
    preds = tmp_path / "gt.csv"
    table.to_pandas().to_csv(preds, index=False)
    out = run("import-predictions", "y", str(preds), "--source", "gt")
    assert "imported 101 predictions on 6 images from gt into y" in out
    out = run("evaluate", "y", "--source", "gt", "--split", "val")
    assert re.search(r"at IoU 0.5: \d+ true positives, 0 false positives, 0 missed", out), out
    assert re.search(r"│ gt\.val\s+│ gt\s+│ val\s+│ 0\.5 │ 1\.000 │", run("evaluations", "y"))
    # Through a server this was an AttributeError ('RemoteDataset' has no 'sample').
    out = run("label-errors", "y", "--predictions", "gt", "--split", "val")
    assert "of 2 images of split val flagged by cleanlab's detection check against gt" in out
    out = run("embed", "y", "--objects", "--model", TINY, "--precision", "fp32")
    assert "embedded 101 of 101 gt boxes in 6 images" in out
    assert "outliers (uniqueness above" in run("objects", "y")
    assert "labels likely wrong" in run("label-errors", "y")
    assert "distance" in run("objects", "y", "--similar", "1", "-k", "3")
    out = run("similar", "y", "0", "-k", "5", "--split", "val")  # sample 0 is in train
    assert len(re.findall(r"│ \d+ +│ [\d.]+ +│ valid/", out)) == 2, out
    # An image file, embedded now: its own sample first, at distance 0.
    image = YOLO / "valid/images/SOAP_061_4_png.rf.00000000000000000000000000000004.jpg"
    out = run("similar", "y", str(image), "-k", "2")
    assert re.search(r"│ \d+ +│ 0\.000\d +│ valid/images/SOAP_061_4_png", out), out
    assert "health of y (7 samples)" in run("health", "y")
    out = run("export", "y", str(tmp_path / "out"), "--format", "yolo", "--split", "val")
    assert "exported 2 samples and " in out
    assert "edit 1: 1 change(s)" in run("edit", "y", "1", "--class", "Dead")
    assert "labels Dead -> Snag" in run("relabel", "y", "--from", "Dead", "--to", "Snag")
    assert "edit 3: 1 sample(s) excluded" in run("exclude", "y", "0")
    assert "edit 3 undone" in run("edits", "y", "--undo")
    # Tags and relabelling take the samples by filters (every filter is an option).
    assert "tagged 2 samples: keep" in run("tag", "y", "keep", "--split", "val")
    assert re.search(r"│ keep +│ 2 +│", run("info", "y"))  # the tags, counted
    assert "tagged 0 samples: keep" in run("tag", "y", "keep", "--split", "val", "--has-label")
    assert "edit 4: 9 labels Alive -> Live" in run(
        "relabel", "y", "--from", "Alive", "--to", "Live", "--tag", "keep", "--split", "val"
    )
    assert "untagged 2 samples: keep" in run("tag", "y", "keep", "--remove", "--tag", "keep")
    assert "give the samples" in cli(home, "tag", "y", "keep", ok=False)
    # A typo'd split, class or tag is refused, not "tagged 0 samples" or "nothing to export".
    said = cli(home, "tag", "y", "keep", "--split", "valid", ok=False)
    assert "dataset 'y' has no split 'valid' (did you mean 'val'?)" in said
    said = cli(home, "export", "y", str(tmp_path / "none"), "--tag", "keep", ok=False)
    assert "dataset 'y' has no sample tagged 'keep' (its tags: none)" in said
    said = cli(home, "relabel", "y", "--from", "Tree", "--to", "Oak", "--class", "tree", ok=False)
    assert "dataset 'y' has no class 'tree' (did you mean 'Tree'?)" in said
    assert "view v1 saved" in run("save-view", "y", "v1", "--split", "train")
    assert "v1" in run("views", "y")
    # Text search needs a model with a text tower: refused with the one above, then found.
    assert "embeds images only" in cli(home, "similar", "y", "--text", "a tree", ok=False)
    run("embed", "y", "--model", "random:clip-tiny", "--precision", "fp32")
    out = run("similar", "y", "--text", "a dead tree", "-k", "3", "--model", "random:clip-tiny")
    assert "random weights" in out and len(re.findall(r"│ \d+ +│ 0\.\d{4}", out)) == 3, out
    out = run("tag-zero-shot", "y", "--labels", "day,night", "--threshold", "0")
    assert re.search(r"zero-shot tags on 7 images with random:clip-tiny .*: zero-shot:day \d+", out)
    jobs = run("jobs")
    assert "embed" in jobs
    assert re.search(r"│ uniqueness +│ y +│ done +│ +│", jobs), jobs  # counts nothing: no 0
    with visor.open(home) as ws:  # each job ends with its own sentence, not its last phase's
        ended = [(j["kind"], j["message"]) for j in ws.jobs.list() if j["state"] == "done"]
    said = dict(reversed(ended))  # the newest of each kind
    assert len(ended) == 18 and len(said) == 14 and all(m != "done" for _, m in ended), ended
    assert said["evaluate"] == (
        "gt.val: AP 1.000; at IoU 0.5: 38 true positives, 0 false positives, 0 missed "
        "(38 predictions, 38 boxes in split val)"
    )
    assert said["quality"] == "7 images measured: no issues"
    assert re.fullmatch(r"uniqueness of 7 samples \(k=2, median 0\.\d+\): .*", said["uniqueness"])
    # ... and that sentence is what the command printed first (one summary, every surface)
    assert all(any(m in out for out in printed) for m in said.values()), (said, printed)
    assert "dinov2-small" in run("models")
    assert "deleted y" in run("rm", "y")
    # The demo: one job of four steps, each step's report as its own command prints it.
    out = run("demo", "--images", "12", "--name", "d", "--model", TINY, "--no-serve")
    assert "the demo d is built (12 images, vectors from random:dinov2-tiny, a map)" in out
    assert "ingested d: 12 samples" in out and re.search(r"map \d+: umap of 12 points", out)
    again = cli(home, "demo", "--images", "12", "--name", "d", "--model", TINY, "--no-serve")
    assert "the demo d is finished (12 images, vectors from random:dinov2-tiny" in again
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}  # type: ignore[union-attr]
    assert commands - used == {"serve"}  # the server itself


def test_the_python_api_is_one_class_in_both_modes() -> None:
    """The remote workspace is the same API with another runner: no method of its own."""

    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            n: inspect.signature(f)
            for n, f in inspect.getmembers(cls, inspect.isfunction)
            if n[0] != "_"
        }

    local = methods(Workspaces)
    for cls in (Workspace, RemoteWorkspace):
        mine = methods(cls)
        assert {n: s for n, s in mine.items() if n in local} == local
    public = [n for n in dir(RemoteWorkspace) if n[0] != "_"]
    assert set(public) - set(dir(Workspaces)) == set()  # no method of its own


def test_the_same_calls_give_the_same_answers(mode: tuple, tmp_path: Path) -> None:
    _, home, _ = mode
    (tmp_path / "empty").mkdir()
    with visor.open(home) as ws:
        ws.ingest(str(YOLO), "trees", wait=True)
        ds = ws.dataset("trees")
        assert type(ds) is Dataset
        assert ds.info()["num_samples"] == 7 and ds.samples(limit=3)[0] == 7
        # One rule for wait=True: a job that fails raises, with the job's own message.
        with pytest.raises(JobFailed, match="no images"):
            ws.ingest(str(tmp_path / "empty"), "empty", wait=True)
        # Data out: one row per sample, or per label; SQL, read-only.
        table = ds.to_arrow()
        assert table.num_rows == 7 and sum(table.column("num_labels").to_pylist()) == 101
        assert sorted(table.column("split").to_pylist()) == ["test"] + ["train"] * 4 + ["val"] * 2
        boxes = ds.to_pandas(visor.SampleFilter(split="val"), labels=True)
        in_val = ws.sql(
            "SELECT count(*) AS n FROM labels l JOIN samples s ON s.dataset_id = l.dataset_id "
            "AND s.id = l.sample_id JOIN datasets d ON d.id = s.dataset_id "
            "WHERE s.split = 'val' AND d.name = 'trees'"
        )
        assert len(boxes) == in_val.to_pylist()[0]["n"] > 0 and set(boxes["split"]) == {"val"}
        counts = ws.sql(
            "SELECT split, count(*) AS n FROM samples WHERE dataset_id = "
            "(SELECT id FROM datasets WHERE name = 'trees') GROUP BY 1 ORDER BY 1"
        )
        assert counts.to_pylist() == [
            {"split": "test", "n": 1},
            {"split": "train", "n": 4},
            {"split": "val", "n": 2},
        ]
        with pytest.raises(InvalidInput, match=r"only one SELECT is run .* this is DELETE"):
            ws.sql("DELETE FROM samples")
        assert ws.sql("SELECT count(*) AS n FROM datasets WHERE name = 'trees'").num_rows == 1
        ds.delete()


def undeclared(value: object, where: str = "") -> list[str]:
    """The fields an answer has that its model does not declare, at any depth."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        found += [f"{where}.{k}" for k in value.model_extra or {}]
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for item in value:
            found += undeclared(item, f"{where}[]")
    elif isinstance(value, dict):
        for key, item in value.items():
            found += undeclared(item, f"{where}[{key}]")
    return found


def test_typed_answers_describe_what_comes_back(mode: tuple, tmp_path: Path) -> None:
    """A quick operation's answer model (in /openapi.json, made into the UI's types) holds
    every field the answer has, at every depth, in both modes; and so do the routes the UI
    reads, through a server."""
    _, home, server = mode
    with visor.open(home) as ws:
        ws.ingest(str(YOLO), "typed", wait=True)
        ds = ws.dataset("typed")
        ds.embed(TINY, wait=True)
        ds.make_map(method="pca", wait=True)
        ds.find_duplicates(wait=True)
        ds.compute_quality(wait=True)
        table = ws.sql(
            AS_PREDICTIONS.replace(
                "ORDER BY",
                "AND l.dataset_id = (SELECT id FROM datasets WHERE name = 'typed') ORDER BY",
            )
        )
        table.to_pandas().to_csv(tmp_path / "gt.csv", index=False)
        ds.import_predictions(str(tmp_path / "gt.csv"), "gt")
        ds.evaluate("gt", wait=True)
        ds.find_detection_label_errors("gt", wait=True)
        ds.embed(TINY, objects=True, wait=True)
        ds.find_label_errors(wait=True)
        box = next(b["id"] for i in range(7) for b in ds.labels(i) if b["kind"] == "gt")
        answers = {
            ops.Datasets: [r for r in ws.datasets() if r["name"] == "typed"],
            ops.AddTags: ds.add_tags([1, 2], ["typed"]),
            ops.Maps: ds.maps(),
            ops.MapInfo: ds.map(),
            ops.SaveView: ds.views.save("v", filters={"split": "val"}),
            ops.ListViews: ds.views.list(),
            ops.Info: ds.info(),
            ops.Sample: [ds.sample(i) for i in range(7)],
            ops.Labels: [label for i in range(7) for label in ds.labels(i)],
            ops.Similar: ds.similar(0, 3),
            ops.QualityReport: ds.quality(3),
            ops.HealthReport: ds.health(8),
            ops.DuplicateGroups: ds.duplicates(limit=1),
            ops.ListEvaluations: ds.evaluations.list(),
            ops.GetEvaluation: ds.evaluations.get("gt"),
            ops.ObjectBox: ds.objects.box(box),
            ops.SimilarObjects: ds.objects.similar(box, 3),
            ops.Inspect: ws.inspect(str(YOLO)),
            ops.EmbeddingStatus: ds.embedding_status(),
            ops.ObjectStatus: ds.objects.status(),
            ops.Relabel: ds.edits.relabel("Dead", "Snag"),
            ops.Undo: ds.edits.undo(),
            ops.Models: ws.models(),
        }
        # the process that embeds (this one, or the server) says what it loaded and runs on
        found = answers[ops.Models]
        assert {m["device"] for m in found["loaded"] if m["model"] == TINY} == {"cpu"}
        assert "dinov2-small" in [m["name"] for m in found["models"]]
        assert found["backend"]["chosen"] in ("auto", "torch", "openvino"), found["backend"]
        assert answers[ops.AddTags] == 2 and len(answers[ops.ListViews]) == 1
        # ... or the samples a filter keeps; only those whose tags change are counted
        typed = visor.SampleFilter(tag="typed")
        assert ds.add_tags(typed, ["typed", "too"]) == 2 == ds.remove_tags(typed, ["too"])
        assert ds.add_tags(typed, ["typed"]) == 0 == ds.remove_tags(typed, ["too"])
        assert answers[ops.Info]["num_samples"] == 7 and len(answers[ops.Labels]) == 202
        assert answers[ops.GetEvaluation]["metrics"]["counts"]["fp"] == 0
        assert answers[ops.Inspect]["images"] == 7 and answers[ops.Undo]["state"] == "undone"
        assert answers[ops.Relabel]["changes"] == answers[ops.Undo]["changes"] > 0
        # the optional parts are there to be checked: a box's label quality, a detection check
        assert any(label.get("label_quality") for label in answers[ops.Labels])
        assert any(sample.get("detection_check") for sample in answers[ops.Sample])
        for op, answer in answers.items():
            shape = list[op.result] if op is ops.Sample else op.result  # a list of answers
            typed = TypeAdapter(shape).validate_python(answer)
            assert not undeclared(typed), (op.name, undeclared(typed))
        assert answers[ops.MapInfo]["num_points"] == 7 and answers[ops.Datasets][0]["maps"] == 1
        if server is not None:  # the routes the UI reads, as declared in /openapi.json
            paths = document()["paths"]
            with httpx.Client(base_url=server.url, headers=server.headers) as client:
                D = "/api/datasets/{name}"
                for route, path in (
                    (D, ""),
                    (D + "/samples", "/samples?boxes=all&evaluation=gt&limit=7"),
                    (D + "/samples/{sample_id}", "/samples/0"),
                    (D + "/samples/{sample_id}", "/samples/3"),
                    (D + "/samples/{sample_id}/similar", "/samples/0/similar?k=3"),
                    (D + "/objects/{label_id}", f"/objects/{box}"),
                    (D + "/objects/{label_id}/similar", f"/objects/{box}/similar?k=3"),
                    (D + "/duplicates", "/duplicates?limit=1"),
                    (D + "/quality", "/quality?examples=3"),
                    (D + "/health", "/health?examples=8"),
                    (D + "/evaluations", "/evaluations"),
                    (D + "/evaluations/{evaluation}", "/evaluations/gt"),
                    (D + "/embeddings/status", "/embeddings/status"),
                    (D + "/objects", "/objects"),
                    ("/api/inspect", f"/api/inspect?path={YOLO}"),
                ):
                    declared = paths[route]["get"]["responses"]["200"]
                    schema = declared["content"]["application/json"]["schema"]
                    ref = schema.get("items", schema)["$ref"].rsplit("/", 1)[-1]
                    model = getattr(ops.results, ref, None) or getattr(ops.reports, ref)
                    url = path if path.startswith("/api/") else f"/api/datasets/typed{path}"
                    answer = client.get(url).json()
                    typed = TypeAdapter(
                        list[model] if "items" in schema else model
                    ).validate_python(answer)
                    assert not undeclared(typed), (path, undeclared(typed))
        ds.delete()
    # The routes say so: the answer's schema is in the OpenAPI document the UI's types come from.
    paths = document()["paths"]
    answer = paths["/api/datasets/{name}/maps"]["post"]["responses"]["200"]["content"]
    assert answer["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/MapRow"}


def test_bad_input_is_refused_with_the_same_words_everywhere(tmp_path: Path) -> None:
    home = tmp_path / "home"
    words = "iou: Input should be less than or equal to 1"
    with Workspace(visor.config.Settings(home=home)) as ws:
        ws.ingest(str(YOLO), "y", wait=True)
        with pytest.raises(InvalidInput, match=words):
            ws.dataset("y").evaluate("gt", iou=2)
        with pytest.raises(InvalidInput, match="unknown: Extra inputs are not permitted"):
            ops.make(ops.Evaluate, source="gt", unknown=1)
    done = run_cli(home, "evaluate", "y", "--source", "gt", "--iou", "2")
    assert done.returncode == 1 and f"error: {words}" in done.stderr
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            r = client.post("/api/datasets/y/evaluate", json={"source": "gt", "iou": 2})
            error = r.json()["error"]
            assert r.status_code == 422 and error["message"] == words
            assert error["errors"][0]["loc"] == ["body", "iou"]
            assert client.post("/api/datasets/y/evaluate", json={"source": "gt"}).status_code == 404
    finally:
        server.stop()


def test_the_readme_calls_only_methods_there_are() -> None:
    """Every `ds.x(`, `ws.x(` and `visor.x(` of the README exists (properties followed to the
    class they return), so an example can't call a renamed method."""
    import typing

    text = (Path(__file__).parents[1] / "README.md").read_text()
    owners = {"ds": Dataset, "ws": Workspaces, "visor": visor}
    missing = set()
    calls = re.findall(r"\b(ds|ws|visor)\.([a-zA-Z_][\w.]*)\(", text)
    for who, path in calls:
        found: typing.Any = owners[who]
        for part in path.split("."):
            if found is typing.Any:
                break  # ws.jobs: typed as Any
            if not hasattr(found, part):
                missing.add(f"{who}.{path}")
                break
            found = getattr(found, part)
            if isinstance(found, property):
                found = typing.get_type_hints(found.fget).get("return")
    assert len(calls) > 40 and not missing, sorted(missing)
