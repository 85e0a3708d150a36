"""ChineseNormalizer: traditional → simplified, full-width → half-width.

Placed first in the NLU pipeline (before JiebaTokenizer), so that training
data and every incoming message, from whatever channel, reach the tokenizer
in one script and one width. Entity offsets stay valid because the
normalisation keeps the text's length (see `bot.text`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_VALUE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.text import normalize


# Registered as a featurizer: the default recipe chains tokenizers and
# featurizers in the order of config.yml for training data and for messages.
@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class ChineseNormalizer(GraphComponent):
    """Normalises the text of messages before tokenisation."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ChineseNormalizer":
        return cls()

    @staticmethod
    def required_packages() -> List[Text]:
        return ["opencc"]

    @staticmethod
    def _normalize_message(message: Message) -> None:
        text = message.get(TEXT)
        if not text:
            return
        normalized = normalize(text)
        if normalized == text:
            return
        message.set(TEXT, normalized)
        # Annotated entities whose value is the literal span follow the text.
        for entity in message.get(ENTITIES) or []:
            value = entity.get(ENTITY_ATTRIBUTE_VALUE)
            if isinstance(value, str) and value == text[entity["start"] : entity["end"]]:
                entity[ENTITY_ATTRIBUTE_VALUE] = normalized[entity["start"] : entity["end"]]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for message in training_data.training_examples:
            self._normalize_message(message)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalize_message(message)
        return messages
