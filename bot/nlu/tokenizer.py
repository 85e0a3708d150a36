"""JiebaTokenizer whose fingerprint includes the domain dictionary's content.

Rasa's JiebaTokenizer fingerprints only its config (the dictionary *path*), so
a trainer's edit to nlu_data/dictionary/*.txt would not trigger retraining.
This subclass adds the files' hash to the fingerprint; tokenisation is Rasa's.
"""

from __future__ import annotations

import glob
import hashlib
from typing import Any, Dict, Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True
)
class DomainJiebaTokenizer(JiebaTokenizer):
    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        path = config.get("dictionary_path")
        if not path:
            return None
        digest = hashlib.sha256()
        for name in sorted(glob.glob(f"{path}/*")):
            digest.update(name.encode("utf-8"))
            with open(name, "rb") as handle:
                digest.update(handle.read())
        return digest.hexdigest()
