import os

from bot import training


def _project(tmp_path):
    (tmp_path / "config.yml").write_text("pipeline: []\n", encoding="utf-8")
    (tmp_path / "nlu_data" / "dictionary").mkdir(parents=True)
    (tmp_path / "nlu_data" / "dictionary" / "domain.txt").write_text("优待证 300 n\n", encoding="utf-8")
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "core.yml").write_text("intents: [greet]\n", encoding="utf-8")
    (tmp_path / "models").mkdir()
    return tmp_path


def test_fingerprint_follows_every_training_input(tmp_path):
    root = _project(tmp_path)
    first = training.training_fingerprint(root)
    assert training.training_fingerprint(root) == first
    (root / "nlu_data" / "dictionary" / "domain.txt").write_text("优待证 300 n\n光荣牌 300 n\n", encoding="utf-8")
    second = training.training_fingerprint(root)
    assert second != first
    (root / "bot").mkdir()
    (root / "bot" / "text.py").write_text("# the normaliser the NLU calls", encoding="utf-8")
    third = training.training_fingerprint(root)
    assert third != second
    (root / "README.md").write_text("not a training input", encoding="utf-8")
    assert training.training_fingerprint(root) == third


def test_current_model_is_the_latest_one_stamped_with_the_datas_fingerprint(tmp_path):
    root = _project(tmp_path)
    models = root / "models"
    assert training.current_model(models, root) is None
    old = models / "old.tar.gz"
    old.write_bytes(b"x")
    (models / "old.fingerprint").write_text(training.training_fingerprint(root) + "\n", encoding="utf-8")
    assert training.current_model(models, root) == old

    newer = models / "newer.tar.gz"  # e.g. trained by hand with rasa train: no stamp
    newer.write_bytes(b"y")
    later = old.stat().st_mtime + 5  # by the file system's clock, not time.time() (faketime fakes only that)
    os.utime(newer, (later, later))
    assert training.latest_model(models) == newer
    assert training.current_model(models, root) is None

    (models / "newer.fingerprint").write_text(training.training_fingerprint(root), encoding="utf-8")
    assert training.current_model(models, root) == newer
    (root / "domain" / "core.yml").write_text("intents: [greet, goodbye]\n", encoding="utf-8")
    assert training.current_model(models, root) is None
