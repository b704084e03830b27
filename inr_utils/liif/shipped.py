"""Trained LIIF models that ship with the package, and how a run finds them.

A shipped model lives at ``inr_utils/data/liif_models/<notebook>/<run>/<name>.pt`` (``<run>`` is
the run's default folder name, e.g. ``R6_T8_sunnybrook``), written by ``ship`` from a finished
run: weights stored in float16 (about half the size; ``load_model`` casts them back to float32),
the ``ModelConfig``, the training history and the run's *provenance*: the data, acquisition,
training settings and split it was trained on. A notebook evaluates a shipped model instead of
training when its provenance equals the run's, except for bfloat16, which only says how the
CNNs run (``LiifExperiment.shipped``; the notebooks' ``RETRAIN=True`` trains anyway). Each run
folder has a ``manifest.json``: the test metrics of the run that trained the models (full
precision), its subjects and settings.

    python -m inr_utils.pipeline ship-models outputs/05_liif_architecture_search/R6_T8_sunnybrook
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import torch

from ..runs import default_out_dir
from .config import DataConfig, TrainConfig

SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "data" / "liif_models"


def shipped_dir(notebook: str, R, DATA=None, SEED: int = 0, **more) -> Path:
    """Where the shipped models of this run would be (named like the run's default OUT_DIR)."""
    return SHIPPED_MODELS / notebook / default_out_dir(notebook, R, DATA, SEED, **more).name


def provenance(model_config, data: DataConfig, training: TrainConfig, split: dict) -> dict:
    """Everything a trained model's weights depend on, as plain JSON values: the model, the data
    and acquisition, the training settings (not ``resume``; ``keep_best`` only when set) and
    the subjects of each split."""
    d = {k: v for k, v in asdict(data).items() if k != "cache_gb"}
    # keep_best=False is left out: it is how every model was trained before the setting existed,
    # so models shipped then still match a run that keeps the last epoch
    t = {k: v for k, v in asdict(training).items() if k != "resume" and not (k == "keep_best" and not v)}
    return json.loads(json.dumps({"model": model_config.to_dict(), "data": d, "training": t, "split": split}))


def _weights_key(prov: Optional[dict]) -> dict:
    """A provenance without what the weights do not depend on: the model's ``bf16`` (bfloat16
    autocast is how the CNNs run on a device, not what the weights are, so a model trained in
    bfloat16 is the same model on a CPU without fast bfloat16, where it runs in float32) and,
    without a plateau rule, the rule's ``min_epochs``."""
    prov = dict(prov or {})
    if isinstance(prov.get("model"), dict):
        prov["model"] = {k: v for k, v in prov["model"].items() if k != "bf16"}
    if isinstance(prov.get("training"), dict) and prov["training"].get("plateau") is None:
        prov["training"] = {k: v for k, v in prov["training"].items() if k != "min_epochs"}
    return prov


def find(directory: Optional[Path], name: str, wanted: dict) -> Optional[dict]:
    """The saved state of model ``name`` in ``directory`` when its provenance equals ``wanted``
    up to the model's ``bf16`` (``_weights_key``; else None, with a line saying why when a file
    is there but differs). The run's own ``bf16`` decides how the model is evaluated."""
    if directory is None:
        return None
    path = Path(directory) / f"{name}.pt"
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    have, want = _weights_key(state.get("extra", {}).get("provenance")), _weights_key(wanted)
    if have != want:
        differs = sorted(k for k in want if have.get(k) != want[k])
        print(f"{name}: the shipped model {path} was trained with other {', '.join(differs)}; training it here")
        return None
    trained_bf16 = state["extra"]["provenance"]["model"].get("bf16")
    if trained_bf16 != wanted["model"].get("bf16"):
        print(f"{name}: the shipped model was trained with bf16={trained_bf16}; this run evaluates it with "
              f"bf16={wanted['model'].get('bf16')} (its metrics may differ from the shipped run's in the last digits)")
    state["path"] = str(path)
    return state


def ship(run_dir, dest: Optional[Path] = None) -> Path:
    """Copy the models of a finished run (``<run_dir>/models/*.pt``) into the package as float16
    with a ``manifest.json`` beside them; returns the folder. The run's metrics.json must exist."""
    run_dir = Path(run_dir)
    models = sorted((run_dir / "models").glob("*.pt"))
    metrics = run_dir / "metrics.json"
    if not models or not metrics.is_file():
        raise FileNotFoundError(f"{run_dir} has no models/*.pt or no metrics.json: run the notebook there first")
    dest = Path(dest) if dest else SHIPPED_MODELS / run_dir.parent.name / run_dir.name
    info = run_dir / "run_info.json"
    manifest = {"run": f"{run_dir.parent.name}/{run_dir.name}", "metrics": json.loads(metrics.read_text()).get("methods", {}),
                "code": json.loads(info.read_text()).get("code") if info.is_file() else None, "models": {}}
    states = {path.name: torch.load(path, map_location="cpu", weights_only=False) for path in models}
    for name, state in states.items():
        if state.get("extra", {}).get("provenance") is None:
            raise ValueError(f"{run_dir / 'models' / name} carries no provenance (not saved by a notebook run): it cannot be shipped")
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, state in states.items():
        state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
        torch.save(state, staging / name)
        prov, history = state["extra"]["provenance"], state["extra"]["history"]
        manifest["models"][Path(name).stem] = {"config": prov["model"], "epochs": len(history["val"]),
                                               "stop": history.get("stop", ""), "train_seconds": sum(history["seconds"])}
        manifest.update(data=prov["data"], training=prov["training"], split=prov["split"])
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(staging, dest)
    return dest
