"""Runner cache: pages are skipped when nothing they depend on changed, re-executed (with their
dependents) when something did, and a manifest records what produced each page.

A tiny throwaway pipeline in tmp; papermill is replaced by a fake that records which pages ran (one
test runs the real kernel), and the alignlib package hash is fixed (other edits must not count)."""
from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import nbformat
import papermill
import pytest

from alignlib.runner import NotebookFailed, ParameterError, load_pipeline, render_toc, run_pipeline
from alignlib.runner import cache, execute

PIPELINE = textwrap.dedent('''\
    profiles: {tiny: "for tests"}
    book:
      root: intro
      parts:
        - caption: "Toy chapter"
          chapter: toy
        - caption: "After"
          pages: [outro]
    steps:
      - notebook: toy/a
        inputs: ["raw/*.txt"]
        params: {tiny: {x: 1}}
      - notebook: toy/b
        output: toy/b_{k}
        foreach: {k: [u, v]}
        needs: [toy/a]
        title: "B: {k}"
      - notebook: toy/c
        needs: [toy/b]
      - notebook: toy/d
    ''')

NOTEBOOK = textwrap.dedent('''\
    # %% tags=["parameters"]
    profile = "tiny"
    x = 0
    k = "u"
    fail = False

    # %%
    if fail:
        raise ValueError("planted failure")
    print("x", x, "k", k)
    ''')


class Area:
    """A tmp repository: pipeline.yml, notebooks/toy/*.py, data and executed folders."""

    def __init__(self, root: Path):
        self.root, self.executed, self.data = root, root / "executed", root / "data"
        self.pipeline_file = root / "pipeline.yml"
        self.pipeline_file.write_text(PIPELINE)
        for name in "abcd":
            self.notebook(name).parent.mkdir(parents=True, exist_ok=True)
            self.notebook(name).write_text(NOTEBOOK)
        self.data.mkdir()
        self.log: list[str] = []

    def notebook(self, name: str) -> Path:
        return self.root / "notebooks" / "toy" / f"{name}.py"

    def run(self, targets=None, overrides=None, **kwargs) -> list[str]:
        """Run the pipeline; return the outputs executed."""
        self.log.clear()
        statuses = run_pipeline("tiny", targets, overrides, executed_dir=self.executed,
                                env={"ALIGNLIB_DATA_DIR": str(self.data), **kwargs.pop("env", {})},
                                log=self.log.append, pipeline=load_pipeline(self.pipeline_file), **kwargs)
        return [s.output for s in statuses if s.executed]

    def manifest(self, output: str) -> dict | None:
        return cache.read_manifest(self.executed, output)


def fake_papermill():
    def run(src: Path, out: Path, parameters: dict, cwd: Path, env: dict | None = None) -> None:
        nb = nbformat.read(src, as_version=4)
        nb.cells.insert(1, nbformat.v4.new_code_cell(f"# Parameters\n{parameters!r}"))
        nbformat.write(nb, out)
        if parameters.get("fail"):
            raise papermill.PapermillExecutionError(2, 3, "", "ValueError", "planted failure", [])
    return run


@pytest.fixture
def area(tmp_path, monkeypatch) -> Area:
    a = Area(tmp_path)
    monkeypatch.setattr(execute, "_run_papermill", fake_papermill())
    monkeypatch.setattr(cache, "package_hash", lambda *args: "fixed-package-hash")
    return a


ALL = ["toy/a", "toy/b_u", "toy/b_v", "toy/c", "toy/d"]


def test_second_run_skips_everything(area):
    assert area.run() == ALL
    assert area.run() == []
    for output in ALL:
        assert f"[alignlib] up to date, skipped: {output}" in area.log
    m = area.manifest("toy/c")
    assert m["status"] == "ok" and m["key"] == cache.cache_key(m["components"])
    assert m["components"]["parameters"] == {"profile": "tiny"}
    assert m["components"]["upstream"] == {o: area.manifest(o)["key"] for o in ("toy/b_u", "toy/b_v")}
    assert m["components"]["env"]["ALIGNLIB_DATA_DIR"] == str(area.data)
    assert area.manifest("toy/a")["components"]["inputs"] == {"raw/*.txt": "missing"}
    assert set(m["versions"]) >= {"python", "torch", "numpy", "papermill", "jupytext", "alignlib"}
    assert set(m["machine"]) == {"node", "machine", "cpu_count"} and m["duration_s"] >= 0 and m["started"]


def test_changing_a_parameter_reruns_the_step_and_its_dependents_only(area):
    area.run()
    area.pipeline_file.write_text(PIPELINE.replace('title: "B: {k}"', 'title: "B: {k}"\n    params: {tiny: {x: 5}}'))
    assert area.run() == ["toy/b_u", "toy/b_v", "toy/c"]
    assert area.run() == []
    # an override on the command line: that page, then the executed pages that need it
    assert area.run(["toy/b"], {"k": "v", "x": 7}) == ["toy/b_v", "toy/c"]
    assert "[alignlib] toy/b_v: changed: parameters" in area.log
    assert "[alignlib] toy/c: changed: upstream (needs the targets)" in area.log
    assert area.manifest("toy/b_v")["components"]["parameters"]["x"] == 7
    assert area.run() == ["toy/b_v", "toy/c"], "the pipeline's parameters are back"


def test_editing_a_notebook_reruns_it_and_its_dependents(area):
    area.run()
    area.notebook("d").write_text(NOTEBOOK + "print('edited')\n")
    assert area.run() == ["toy/d"]
    area.notebook("a").write_text(NOTEBOOK + "print('edited')\n")
    assert area.run() == ["toy/a", "toy/b_u", "toy/b_v", "toy/c"]


def test_package_inputs_and_env_are_in_the_key(area, monkeypatch):
    area.run()
    (area.data / "raw").mkdir()
    (area.data / "raw" / "s1.txt").write_text("1")
    assert area.run() == ["toy/a", "toy/b_u", "toy/b_v", "toy/c"]
    fingerprint = area.manifest("toy/a")["components"]["inputs"]["raw/*.txt"]
    assert fingerprint == {"raw/s1.txt": hashlib.sha256(b"1").hexdigest()}, "inputs are keyed by content"
    os.utime(area.data / "raw" / "s1.txt", ns=(1, 1))
    assert area.run() == [], "a new mtime with the same content changes nothing"
    (area.data / "raw" / "s1.txt").write_text("2")
    assert area.run()[:1] == ["toy/a"]
    assert area.run(env={"ALIGNLIB_RUNS_DIR": str(area.root / "runs")}) == ALL
    monkeypatch.setattr(cache, "package_hash", lambda *args: "edited-package")
    assert area.run(env={"ALIGNLIB_RUNS_DIR": str(area.root / "runs")}) == ALL


def test_package_hash_covers_source_files(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "m.py").write_text("x = 1\n")
    (pkg / "notes.txt").write_text("not source")
    before = cache.package_hash(pkg)
    (pkg / "notes.txt").write_text("changed, but not source")
    assert cache.package_hash(pkg) == before
    (pkg / "sub" / "cfg.yml").write_text("a: 1\n")
    assert cache.package_hash(pkg) != before


def test_target_runs_missing_upstream_first_and_only_then(area):
    assert area.run(["toy/c"]) == ["toy/a", "toy/b_u", "toy/b_v", "toy/c"]
    assert area.run(["toy/a"]) == []
    area.notebook("a").write_text(NOTEBOOK + "print('edited')\n")
    assert area.run(["toy/c"]) == [], "an out-of-date upstream page is used as executed"
    assert any(line.startswith("[alignlib] using toy/a as executed, though out of date (source)") for line in area.log)
    assert area.run(["toy/c"], upstream=True) == ["toy/a", "toy/b_u", "toy/b_v", "toy/c"]


def test_target_does_not_run_dependents_never_executed(area):
    assert area.run(["toy/a"]) == ["toy/a"]
    assert any("not executed yet" in line and "toy/c" in line for line in area.log)


def test_force_reexecutes_the_targets_only(area):
    area.run()
    assert area.run(["toy/b_u"], force=True) == ["toy/b_u"]
    assert area.run(["toy/a", "toy/c"], force=True) == ["toy/a", "toy/c"], "pages between are up to date"
    assert area.run(force=True) == ALL


def test_failed_page_leaves_no_manifest_claiming_success(area):
    with pytest.raises(NotebookFailed, match="toy/c.py failed in cell 2"):
        area.run(["toy/c"], {"fail": True})
    assert area.manifest("toy/c") is None and not (area.executed / "toy/c.ipynb").exists()
    assert (area.executed / "_failed/toy/c.ipynb").exists()
    assert area.run() == ["toy/c", "toy/d"], "the failed page runs again, the rest is up to date"
    good = area.manifest("toy/c")
    with pytest.raises(NotebookFailed):
        area.run(["toy/c"], {"fail": True})
    assert area.manifest("toy/c") == good, "the last good page keeps the manifest that describes it"
    assert area.run() == []
    assert not list(area.executed.rglob("*.partial"))


def test_manifest_is_removed_before_a_new_page_is_published(area, monkeypatch):
    area.run()
    seen = []
    publish = execute._publish
    monkeypatch.setattr(execute, "_publish", lambda src, final: (seen.append(area.manifest("toy/d")), publish(src, final)))
    area.run(["toy/d"], force=True)
    assert seen == [None]


def test_needs_and_book_are_checked(area):
    bad = PIPELINE.replace("needs: [toy/b]", "needs: [toy/bee]")
    area.pipeline_file.write_text(bad)
    with pytest.raises(ParameterError, match="toy/c needs 'toy/bee'"):
        load_pipeline(area.pipeline_file)
    area.pipeline_file.write_text(PIPELINE.replace("  - notebook: toy/d\n", "  - notebook: toy/d\n    chapter: other\n"))
    with pytest.raises(ParameterError, match="toy/d belongs to chapter 'other'"):
        load_pipeline(area.pipeline_file)
    area.pipeline_file.write_text(PIPELINE.replace("needs: [toy/b]", "need: [toy/b]"))
    with pytest.raises(ParameterError, match="unknown key.*need"):
        load_pipeline(area.pipeline_file)


def test_needs_with_placeholder_names_one_output(area):
    area.pipeline_file.write_text(PIPELINE.replace("  - notebook: toy/c\n    needs: [toy/b]\n",
                                                   "  - notebook: toy/c\n    output: toy/c_{k}\n    foreach: {k: [u, v]}\n"
                                                   "    needs: [\"toy/b_{k}\"]\n"))
    runs = {r.output: r.needs for r in load_pipeline(area.pipeline_file).expand("tiny")}
    assert runs["toy/c_u"] == ("toy/b_u",) and runs["toy/c_v"] == ("toy/b_v",)


def test_toc_generated_from_the_book_section(area):
    toc = render_toc(load_pipeline(area.pipeline_file))
    assert toc.startswith("# GENERATED from pipeline.yml")
    assert "root: intro" in toc and '  - caption: "Toy chapter"' in toc and "      - file: toy/index" not in toc
    assert '          - file: book/executed/toy/b_v\n            title: "B: v"' in toc
    assert "      - file: book/toy/index" in toc and "      - file: outro" in toc


def test_real_kernel_run_then_skip(tmp_path, monkeypatch):
    """Through papermill for real: two pages, then a second run executes nothing."""
    monkeypatch.setattr(cache, "package_hash", lambda *args: "fixed-package-hash")
    a = Area(tmp_path)
    a.pipeline_file.write_text(PIPELINE.split("  - notebook: toy/b")[0].replace('inputs: ["raw/*.txt"]', "")
                               + "  - notebook: toy/d\n    needs: [toy/a]\n")
    assert a.run() == ["toy/a", "toy/d"]
    assert '"x 1 k u' in (a.executed / "toy/a.ipynb").read_text()
    assert a.run() == []
    assert json.loads((a.executed / "toy/d.manifest.json").read_text())["components"]["upstream"] == {
        "toy/a": a.manifest("toy/a")["key"]}


def test_parameters_checked_before_anything_runs(area):
    bad = PIPELINE.replace("    needs: [toy/b]\n", "    needs: [toy/b]\n    params: {tiny: {nope: 1}}\n")
    area.pipeline_file.write_text(bad)
    assert area.run(["toy/a"]) == ["toy/a"], "a page that never ran is not checked, nor run"
    area.pipeline_file.write_text(PIPELINE)
    area.run()
    area.pipeline_file.write_text(bad)
    area.notebook("a").write_text(NOTEBOOK + "print('edited')\n")
    before = area.manifest("toy/a")
    with pytest.raises(ParameterError, match="toy/c: unknown parameter.*nope"):
        area.run(["toy/a"])
    assert area.manifest("toy/a") == before
    with pytest.raises(ParameterError, match="toy/c: unknown parameter.*nope"):
        area.run()


def test_same_size_in_place_edit_with_mtime_kept_is_detected(area):
    """`touch -r`: an input edited in place, its size and mtime restored, still re-executes its pages."""
    (area.data / "raw").mkdir()
    data = area.data / "raw" / "s1.txt"
    data.write_text("1234")
    assert area.run() == ALL and area.run() == []
    st = data.stat()
    data.write_text("1243")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (data.stat().st_size, data.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert area.run() == ["toy/a", "toy/b_u", "toy/b_v", "toy/c"]
    assert "[alignlib] toy/a: changed: inputs" in area.log


def test_two_runs_at_once_execute_each_page_once(area, monkeypatch):
    """Two commands on one executed folder: the second waits for each page's lock and then finds the page
    published with its key (it does not execute it again); no temporary file is left."""
    import threading
    import time

    calls: list[str] = []
    slow = fake_papermill()

    def papermill_taking_time(src, out, parameters, cwd, env=None):
        calls.append(parameters.get("k", "") or str(src))
        time.sleep(0.3)
        slow(src, out, parameters, cwd, env)

    monkeypatch.setattr(execute, "_run_papermill", papermill_taking_time)
    logs: list[list[str]] = [[], []]
    done: list[list[str]] = [[], []]

    def command(i: int) -> None:
        statuses = run_pipeline("tiny", None, None, executed_dir=area.executed, log=logs[i].append,
                                env={"ALIGNLIB_DATA_DIR": str(area.data)}, pipeline=load_pipeline(area.pipeline_file))
        done[i] = [s.output for s in statuses if s.executed]

    threads = [threading.Thread(target=command, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    assert len(calls) == len(ALL), f"each page executed once, not {calls}"
    assert sorted(done[0] + done[1]) == ALL
    second = "\n".join(logs[1])
    assert "waiting: another command is writing the page toy/a" in second
    assert "published meanwhile by another command" in second
    assert not list(area.executed.rglob("*.partial"))
    assert all(area.manifest(o)["key"] for o in ALL)
