"""Training only when the data changed.

Rasa's own "nothing changed" check asks its training cache, which may have
dropped a large component's output, and then retrains a model that matches
the data. vetbot keeps a fingerprint of every training input next to each
model it trains (models/<model>.fingerprint) and trains only when the latest
model's fingerprint differs from the data's.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Optional

from bot.settings import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"
# Everything that shapes the model: the data, the domain, the pipeline and the
# code of our own pipeline components (with the text functions they call).
TRAINING_INPUTS = ("config.yml", "domain", "nlu_data", "bot/nlu", "bot/text.py", "bot/redaction.py")


def _input_files(root: Path) -> Iterable[Path]:
    for name in TRAINING_INPUTS:
        path = root / name
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)


def training_fingerprint(root: Path = PROJECT_ROOT) -> str:
    import rasa

    digest = hashlib.sha256(f"rasa {rasa.__version__}\n".encode())
    for path in _input_files(root):
        digest.update(str(path.relative_to(root)).encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def latest_model(models_dir: Path = MODELS_DIR) -> Optional[Path]:
    models = sorted(models_dir.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    return models[-1] if models else None


def _fingerprint_file(model: Path) -> Path:
    return model.with_name(model.name[: -len(".tar.gz")] + ".fingerprint")


def current_model(models_dir: Path = MODELS_DIR, root: Path = PROJECT_ROOT) -> Optional[Path]:
    """The latest model if it was trained on exactly the present data."""
    model = latest_model(models_dir)
    if model is None:
        return None
    stamp = _fingerprint_file(model)
    if stamp.exists() and stamp.read_text(encoding="utf-8").strip() == training_fingerprint(root):
        return model
    return None


def rasa_train_command(force: bool = False) -> List[str]:
    cmd = [
        sys.executable, "-m", "rasa", "train",
        "--config", "config.yml",
        "--domain", "domain",
        "--data", "nlu_data",
        "--out", "models",
    ]
    if force:
        cmd.append("--force")
    return cmd


def train(force: bool = False) -> int:
    if not force:
        model = current_model()
        if model is not None:
            print(f"模型与训练数据一致，无需重新训练：{model.name}")
            return 0
    fingerprint = training_fingerprint()
    # Rasa reuses its training cache; when its cache says nothing changed it
    # keeps the latest model, which then matches the data too.
    result = subprocess.call(rasa_train_command(force), cwd=PROJECT_ROOT)
    if result != 0:
        return result
    model = latest_model()
    if model is None:
        print("训练没有产生模型。", file=sys.stderr)
        return 1
    _fingerprint_file(model).write_text(fingerprint + "\n", encoding="utf-8")
    print(f"模型：{model.name}")
    return 0
