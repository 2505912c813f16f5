"""The backbone AutoGluon trains, handed to it as a local checkpoint folder: random weights by default, pretrained
ones only where they already sit in a local cache. Nothing here downloads.

In AutoGluon 1.6.3 MultiModalPredictor(pretrained=False) does not reach the model (the classification learner
builds it without passing it on), so timm asks the Hugging Face hub for weights. A folder as
`model.timm_image.checkpoint_name` avoids that: AutoGluon builds the architecture named in its config.json and
loads its pytorch_model.bin. Written from a seeded random initialisation it is pretrained=False in effect.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Weight files a timm checkpoint on the Hugging Face hub may have, in timm's order of preference.
HF_WEIGHT_FILES = ("open_clip_model.safetensors", "model.safetensors", "open_clip_pytorch_model.bin",
                   "pytorch_model.bin")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "pytorch_model.bin"


class PretrainedNotCached(RuntimeError):
    """The pretrained weights asked for are in no local cache; the harness does not download them."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder written for AutoGluon, and where its weights came from."""

    folder: Path
    architecture: str
    pretrained: bool
    source: str  # 'random' or the cached weights file the folder was written from
    sha256: str  # of the weights in the folder (pytorch_model.bin as written)
    params: int


def hf_hub_cache() -> Path:
    """Hugging Face's hub cache folder, as huggingface_hub finds it (HF_HUB_CACHE, HF_HOME/hub, ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home).expanduser() / "hub"


def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder, where timm's older (URL) weights are cached (TORCH_HOME, ~/.cache/torch)."""
    home = os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "torch"
    return Path(home).expanduser() / "hub" / "checkpoints"


def cached_hf_file(repo_id: str, filenames: tuple[str, ...], cache: Path) -> Path | None:
    """The first of `filenames` of hub model `repo_id` in the cache (the revision refs/main names, else any
    snapshot), read from the cache's layout alone: models--ORG--NAME/snapshots/REVISION/FILE."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    revisions = [ref.read_text().strip()] if ref.is_file() else []
    revisions += sorted(p.name for p in snapshots.iterdir() if p.name not in revisions)
    for name in filenames:
        for revision in revisions:
            path = snapshots / revision / name
            if path.is_file():
                return path
    return None


def cached_weights(hf_hub_id: str | None, hf_filename: str | None, url: str | None,
                   hf_cache: Path, torch_checkpoints: Path) -> Path | None:
    """Where a timm checkpoint's pretrained weights sit locally (hub cache first, then torch.hub's), or None."""
    if hf_hub_id:
        repo_id, _, _ = hf_hub_id.partition("@")
        names = (hf_filename, *HF_WEIGHT_FILES) if hf_filename else HF_WEIGHT_FILES
        found = cached_hf_file(repo_id, tuple(names), hf_cache)
        if found is not None:
            return found
    if url:
        path = torch_checkpoints / url.rstrip("/").rsplit("/", 1)[-1]
        if path.is_file():
            return path
    return None


def not_cached_message(name: str, hf_hub_id: str | None, hf_cache: Path, torch_checkpoints: Path) -> str:
    """The one line a run without cached weights fails with."""
    where = f"{hf_cache}/models--{hf_hub_id.replace('/', '--')}" if hf_hub_id else str(torch_checkpoints)
    return (f"pretrained weights of {name} are in no local cache (looked in {where}); bench never downloads "
            f"them: fetch them once yourself (python -c \"import timm; timm.create_model('{name}', "
            "pretrained=True)\") or leave pretrained off")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checkpoint(name: str, folder: Path, seed: int, pretrained: bool) -> Checkpoint:
    """Writes timm backbone `name` (no classifier head, as AutoGluon loads it) into `folder`: seeded random
    weights, or with pretrained=True the weights from a local cache (PretrainedNotCached where there are none)."""
    import timm
    import torch

    source = "random"
    if pretrained:
        cfg = _pretrained_cfg(timm, name)
        hf_hub_id, hf_filename, url = (cfg.get(k) for k in ("hf_hub_id", "hf_hub_filename", "url"))
        hf_cache, torch_checkpoints = hf_hub_cache(), torch_hub_checkpoints()
        weights = cached_weights(hf_hub_id, hf_filename, url, hf_cache, torch_checkpoints)
        if weights is None:
            raise PretrainedNotCached(not_cached_message(name, hf_hub_id, hf_cache, torch_checkpoints))
        # pretrained_cfg_overlay's file: timm loads that file and nothing else (no hub, no URL).
        model = timm.create_model(name, pretrained=True, num_classes=0, pretrained_cfg_overlay={"file": str(weights)})
        source = str(weights)
    else:
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False, num_classes=0)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / WEIGHTS_FILE)
    config: dict[str, Any] = {"architecture": model.pretrained_cfg.get("architecture", name),
                              "num_features": model.num_features, "pretrained_cfg": dict(model.pretrained_cfg)}
    (folder / CONFIG_FILE).write_text(json.dumps(config, default=str, indent=1))
    return Checkpoint(folder=folder, architecture=name, pretrained=pretrained, source=source,
                      sha256=file_sha256(folder / WEIGHTS_FILE), params=sum(p.numel() for p in model.parameters()))


def _pretrained_cfg(timm: Any, name: str) -> dict[str, Any]:
    """timm's pretrained config of `name` (its tag's, or the architecture's default tag), as timm resolves it when
    it builds the model; building it without weights reads no file and asks no hub."""
    cfg = dict(timm.create_model(name, pretrained=False, num_classes=0).pretrained_cfg)
    if not (cfg.get("hf_hub_id") or cfg.get("url")):
        raise PretrainedNotCached(f"timm knows no pretrained weights for {name}; leave pretrained off")
    return cfg
