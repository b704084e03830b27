import json

from inr_utils import liif, summary
from inr_utils.report import results_markdown


def test_record_run_and_wall_time_line(tmp_path):
    """run_info.json holds papermill's record of an executed notebook; the README line sums
    the runs per notebook with their dates and machines."""
    import json
    import re

    from inr_utils import REPO_ROOT
    from inr_utils.report import run_records, wall_time_line
    from inr_utils.runs import record_run

    for run, seconds, day in (("R3", 90.0, "2026-11-20"), ("R6", 150.0, "2026-11-26")):
        folder = tmp_path / "05_liif" / run
        folder.mkdir(parents=True)
        out_dir = str(REPO_ROOT / "outputs" / "05_liif" / run) if run == "R3" else str(folder)
        meta = {"papermill": {"parameters": {"R": int(run[1:]), "OUT_DIR": out_dir}, "start_time": f"{day}T10:00:00",
                              "end_time": None, "duration": seconds}}
        (folder / "05_liif.ipynb").write_text(json.dumps({"metadata": meta, "cells": []}))
        info = json.loads(record_run(folder / "05_liif.ipynb").read_text())
        assert info["seconds"] == seconds and info["parameters"]["R"] == int(run[1:]) and info["cpu"]
        # the code that ran: this checkout's commit (tests run in a git clone)
        assert re.fullmatch(r"[0-9a-f]{40}", info["code"]["commit"]) and isinstance(info["code"]["dirty"], bool)
        # a folder inside the repository is recorded relative to it, one outside as it is
        assert info["parameters"]["OUT_DIR"] == ("outputs/05_liif/R3" if run == "R3" else str(folder.resolve()))
    records = run_records(tmp_path)
    assert set(records) == {"05_liif/R3", "05_liif/R6"}
    line = wall_time_line(records)
    assert "2 runs, 4.0 min in all" in line and "2026-11-20, 2026-11-26" in line and "R3 1.5, R6 2.5" in line
    assert "without a record" not in line and "without a record" in wall_time_line(records, ("01_data/R3",))
    # the reproduce verdict (120 min), only when every run has a record: 2 runs at a time take at
    # most the sum (met when it is within) and at least half of it (missed when that is over)
    assert "**met** (4.0 min of notebook runs on one machine, added up" in line
    assert "Target" not in wall_time_line(records, ("01_data/R3",))
    records["05_liif/R6"]["seconds"] = 121 * 60.0
    line = wall_time_line(records)
    assert "120 min, not decided by these records (122.5 min" in line and "would take about 121.0 min" in line
    records["05_liif/R3"]["seconds"] = 130 * 60.0
    assert "120 min, **missed** (251.0 min" in wall_time_line(records)
    # a LIIF run that resumed from its checkpoints counts with its full training time
    records["05_liif/R6"]["seconds"] = 60.0
    line = wall_time_line(records, from_scratch={"05_liif/R6": 3000 * 60.0})
    assert "R6 1.0 (from scratch 3000.0)" in line and "**missed** (these runs from scratch add up to 3130.0 min" in line
    assert wall_time_line({}) == ""
    # the precision the LIIF runs' CNNs trained in is said beside their time
    assert "bfloat16" not in line
    assert ("The LIIF runs (05) trained their CNNs in bfloat16 (a CPU with native bfloat16" in
            wall_time_line(records, bf16={"05_liif/R3": True, "05_liif/R6": True}))
    assert "in bfloat16 in 1 of 2 runs, in float32 in the others; a CPU without" in \
        wall_time_line(records, bf16={"05_liif/R3": True, "05_liif/R6": False})
    assert wall_time_line(records, bf16={"05_liif/R3": False}).endswith("trained their CNNs in float32.")


def test_one_make_reproduce_is_judged_by_its_measured_span():
    """Runs of one commit, all from scratch, whose start-to-end span is within their sum: the
    verdict is the measured span; runs of separate sessions (a span longer than the sum), of
    two commits or a resumed run fall back to the estimate."""
    from inr_utils.report import pool_span, wall_time_line

    code = {"commit": "a" * 40, "dirty": False, "diff": None}
    run = lambda start, end, seconds: {"start_time": f"2026-12-04T{start}:00+00:00", "end_time": f"2026-12-04T{end}:00+00:00",
                                       "seconds": seconds, "cpu": "X", "cpu_count": 2, "code": dict(code)}
    records = {"02/R3": run("05:00", "06:00", 3600.0), "04/R6": run("05:00", "06:10", 4200.0),
               "05/R6": run("06:00", "07:05", 3900.0)}
    span, first, last = pool_span(records)
    assert span == 125 * 60 and f"{first:%H:%M}" == "05:00" and f"{last:%H:%M}" == "07:05"
    line = wall_time_line(records)
    assert "120 min, **missed**: measured" in line and "05:00 to 07:05 UTC, 125.0 min" in line and "195.0 min of runs" in line
    records["05/R6"] = run("06:00", "06:55", 3300.0)
    assert "120 min, **met**: measured" in wall_time_line(records)
    assert pool_span(records, from_scratch={"04/R6": 9000.0}) is None  # a resumed run
    assert "An estimate" in wall_time_line(records, from_scratch={"04/R6": 9000.0})
    records["05/R6"] = run("09:00", "10:00", 3600.0)  # another session: gaps make the span longer than the sum
    assert pool_span(records) is None
    records["05/R6"] = {**run("06:00", "06:55", 3300.0), "code": {**code, "commit": "b" * 40}}
    assert pool_span(records) is None


def _liif_record(data, T_low, rdn, unet, tv, train, infer=0.3):
    methods = {"RDN": {"rel_l1": rdn, "train_seconds": train[0], "infer_seconds": infer},
               "UNet": {"rel_l1": unet, "train_seconds": train[1], "infer_seconds": infer},
               "TV": {"rel_l1": tv}, "ZF": {"rel_l1": 0.3}}
    return {"R": 6, "T_low": T_low, "data": data, "methods": methods}


def test_liif_verdicts_come_from_each_runs_summary():
    """The TV ratio is judged on the real patient only; training seconds and the inference per run."""
    phantom = liif.run_summary(_liif_record("phantom", 4, 0.5, 0.5, 0.5, (100, 200)))
    assert [t["target"].split(" <=")[0] for t in phantom["targets"]] == ["training", "inference of one cine < 1 s"]
    real = liif.run_summary(_liif_record("sunnybrook", 4, 0.09, 0.08, 0.1, (250, 299)))
    assert real["targets"][0] == {"target": "best LIIF / tuned TV <= 0.8 on the real held-out patient", "value": "0.800", "met": True}
    assert real["targets"][1]["met"] and real["tables"][0]["rows"][0][-1] == "0.80"
    slow = liif.run_summary(_liif_record("sunnybrook", 8, 0.09, 0.0801, 0.1, (301, 250), infer=1.2))
    assert [t["met"] for t in slow["targets"]] == [False, False, False]
    assert "(0.170)" in slow["tables"][0]["rows"][0][4]  # the original's published UNet value at R 6, T_low 8


def _record_04(data, rel, tcorr):
    names = ("ZF", "2D-C8", "2D-C64", "3D-C16")
    return {"R": 6, "data": data, "methods": {n: {"rel_l1": r, "temporal_correlation": c, **({"epochs": 30} if n != "ZF" else {})}
                                              for n, r, c in zip(names, rel, tcorr)}}


def test_liif_2d_vs_3d_summary_states_the_verdict_and_judges_the_real_data_only():
    real = liif.run_summary_2d_vs_3d(_record_04("sunnybrook", (0.20, 0.15, 0.18, 0.12), (0.40, 0.30, 0.05, 0.45)))
    row = real["tables"][0]["rows"][0]
    assert row[2] == "0.200 / 0.40" and row[5] == "0.120 / 0.45 (30 ep)" and row[-1] == "3D better by 0.030 (vs 2D-C8)"
    assert [t["met"] for t in real["targets"]] == [True, True]
    # 2D C = 64 above ZF's error and not static; 3D less temporal than ZF
    bad = liif.run_summary_2d_vs_3d(_record_04("sunnybrook", (0.20, 0.15, 0.25, 0.16), (0.40, 0.30, 0.20, 0.35)))
    assert [t["met"] for t in bad["targets"]] == [False, False] and "worst 2D-C64 0.250" in bad["targets"][0]["value"]
    assert bad["tables"][0]["rows"][0][-1] == "3D worse by 0.010 (vs 2D-C8)"
    assert liif.run_summary_2d_vs_3d(_record_04("phantom", (0.2, 0.1, 0.1, 0.1), (0.4,) * 4))["targets"] == []


def test_liif_2d_vs_3d_summary_judges_the_plateau_on_every_data_set():
    stops = {"2D-C8": ("plateau after 52 epochs: ...", 0.004), "2D-C64": ("time budget: 310 s ...", 0.03),
             "3D-C16": ("reached the most epochs (80)", 0.043)}
    for data in ("phantom", "sunnybrook"):
        record = _record_04(data, (0.20, 0.15, 0.18, 0.12), (0.40, 0.30, 0.05, 0.45))
        for name, (stop, gain) in stops.items():
            record["methods"][name].update(stop=stop, last_quarter_gain=gain)
        first = liif.run_summary_2d_vs_3d(record)["targets"][0]
        assert first["target"].startswith("every model trained to a plateau (stopped by the plateau rule") and not first["met"]
        assert first["value"] == ("1 of 3: 2D-C8 plateau after 52 epochs, last quarter +0.4%; 2D-C64 time budget, "
                                  "last quarter +3.0%; 3D-C16 epoch cap (80), last quarter +4.3%")
        for name in stops:
            record["methods"][name]["stop"] = "plateau after 60 epochs: ..."
        assert liif.run_summary_2d_vs_3d(record)["targets"][0]["met"]
        del record["methods"]["2D-C64"]["stop"]  # a model whose stop was not recorded has not shown a plateau
        first = liif.run_summary_2d_vs_3d(record)["targets"][0]
        assert not first["met"] and "2D-C64 no stop recorded" in first["value"]
    # a record without stops (a record from before they were kept) is not judged on it
    assert "plateau" not in liif.run_summary_2d_vs_3d(_record_04("sunnybrook", (0.2,) * 4, (0.4,) * 4))["targets"][0]["target"]


def test_report_renders_any_runs_methods_and_summary_without_knowing_the_notebook(tmp_path):
    for run, value in (("R3", "1.0"), ("R6", "2.0")):
        folder = tmp_path / "07_new_study" / run
        folder.mkdir(parents=True)
        block = summary.block([summary.table("My table", ["a", "b"], [[value, "x"]])], [summary.target("a <= 1.5", value, value == "1.0")])
        (folder / "metrics.json").write_text(json.dumps({"methods": {"ZF": {"psnr": 20.0}}, "summary": block}))
    text = results_markdown(tmp_path)
    assert "### 07_new_study" in text and "| R3 | ZF | 20.00 |" in text
    assert "**My table**\n\n| run | a | b |\n|---|---|---|\n| R3 | 1.0 | x |\n| R6 | 2.0 | x |" in text
    assert "| R3 | a <= 1.5 | 1.0 | **met** |" in text and "| R6 | a <= 1.5 | 2.0 | **missed** |" in text


def test_benchmark_headlines_stand_beside_their_notebook_and_the_others_last(tmp_path):
    """A benchmark file naming a notebook (``BESIDE``) has its headline right after that notebook's
    block; one without comes after every notebook; one without headline markers is not in the summary."""
    from inr_utils.report import BESIDE, HEADLINE, headline_markdown

    outputs, bench = tmp_path / "outputs", tmp_path / "bench"
    for nb in ("04_first", "05_second"):
        folder = outputs / nb / "R3"
        folder.mkdir(parents=True)
        block = summary.block([summary.table(f"Table of {nb}", ["a"], [["1"]], headline=True)], [])
        (folder / "metrics.json").write_text(json.dumps({"methods": {}, "summary": block}))
    bench.mkdir()
    (bench / "a_beside.md").write_text(f"intro\n\n{BESIDE.format('04_first')}\n{HEADLINE[0]}\nHEAD A\n{HEADLINE[1]}\n\nfull A\n")
    (bench / "b_last.md").write_text(f"intro\n{HEADLINE[0]}\nHEAD B\n{HEADLINE[1]}\nfull B\n")
    (bench / "c_page_only.md").write_text("intro\nfull C\n")
    text = headline_markdown(outputs, tmp_path / "results.md", bench)
    order = [text.index(s) for s in ("Table of 04_first", "HEAD A", "Table of 05_second", "HEAD B")]
    assert order == sorted(order)
    assert "full A" not in text and "c_page_only" not in text and "<!-- beside" not in text
