"""UrgentMessages: a message with words of danger or of a group incident is a complaint.

Placed last in the NLU pipeline. When the text names one of the urgency words of
data/complaints.yml (轻生, 不想活了, 集体上访 …; staff edit them, no retraining needed),
the intent becomes ``file_complaint`` with full confidence, whatever the classifiers
thought ("我不想活了" reads like ``stop`` to them). The complaint form then registers
the case at once with the highest priority and gives the emergency numbers
(actions/complaints.py). The classifiers' own ranking is kept after it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

URGENT_INTENT = "file_complaint"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class UrgentMessages(GraphComponent):
    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "UrgentMessages":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        from bot.services.complaints import is_urgent  # the rules file is read once, on first use

        for message in messages:
            text = message.get(TEXT) or ""
            if text.startswith("/") or not is_urgent(text):
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != URGENT_INTENT]
            urgent = {INTENT_NAME_KEY: URGENT_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            message.set(INTENT, urgent, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [urgent, *ranking], add_to_output=True)
        return messages
