"""SeveralQuestions: a long message that asks about two or more policy topics is a
policy question, whatever single intent the classifier gave the whole of it.

Placed after FallbackClassifier. A 500-character message asking how to continue
social insurance, how to get the preferential card and whether a business loan is
subsidised reads, as a whole, like nothing in particular (nlu_fallback) or like one
of its parts. LinearResponseSelector finds the topic of each question
(``policy_topics``, bot/nlu/linear.py); when it found two or more and the message
was not read as something to do (a complaint, a booking, a record lookup …), the
intent becomes ``faq`` and the selector's topic the first one asked, so that
action_answer_policy answers it and offers the others by number (actions/policy.py).
UrgentMessages runs after this and still wins.
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.linear import POLICY_TOPICS

RETRIEVAL_INTENT = "faq"
# Intents that say nothing the user wants done: a message of several policy questions
# read as one of these is read as the questions.
NOT_A_TASK = ("faq", "nlu_fallback", "out_of_scope", "greet", "inform", "thank", "give_feedback", "help")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SeveralQuestions(GraphComponent):
    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "SeveralQuestions":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            topics = message.get(POLICY_TOPICS) or []
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if len(topics) < 2 or intent not in NOT_A_TASK:
                continue
            selector = dict(message.get("response_selector") or {})
            chosen = dict(selector.get(RETRIEVAL_INTENT) or {})
            first = topics[0]["intent_response_key"]
            response = dict(chosen.get("response") or {})
            if response.get("intent_response_key") != first:
                response.update({"intent_response_key": first, "utter_action": f"utter_{first}",
                                 "confidence": topics[0]["confidence"], "responses": []})
                chosen["response"] = response
                selector[RETRIEVAL_INTENT] = chosen
                message.set("response_selector", selector, add_to_output=True)
            faq = {INTENT_NAME_KEY: RETRIEVAL_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != RETRIEVAL_INTENT]
            message.set(INTENT, faq, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [faq, *ranking], add_to_output=True)
        return messages
