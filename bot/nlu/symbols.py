"""SymbolOnlyMessages: emoji, punctuation or other symbols only get the intent ``symbols_only``.

Placed after FallbackClassifier in the NLU pipeline. The classifiers find nothing to
read in "👍👍👍", "？？？" or "😂" and fall back, and two fallbacks in a row would hand
the user to staff (actions/handoff.py). Such a message (bot.symbols.symbol_kind, which
also knows WeChat's bracketed emoji names such as "[强]") gets ``symbols_only`` with full
confidence instead: outside a form it is answered (thanks for a thumbs-up, else a short
friendly line, actions/symbols.py), inside one it is no answer to the form's question,
which is asked again (the forms' text mappings leave ``symbols_only`` out). The intent
has no training examples: only this component sets it. The classifiers' own ranking is
kept after it, without nlu_fallback.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.symbols import symbol_kind

SYMBOLS_INTENT = "symbols_only"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SymbolOnlyMessages(GraphComponent):
    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SymbolOnlyMessages":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT) or ""
            # "/intent{…}" is a button's payload, not something a user typed.
            if text.startswith("/") or symbol_kind(text) is None:
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or []
                       if r.get(INTENT_NAME_KEY) not in (SYMBOLS_INTENT, DEFAULT_NLU_FALLBACK_INTENT_NAME)]
            symbols = {INTENT_NAME_KEY: SYMBOLS_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, symbols, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [symbols, *ranking], add_to_output=True)
        return messages
