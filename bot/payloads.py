"""Button payloads ("/intent", "/intent{json}", "/faq/<topic>") as Rasa parse data.

A numbered reply is turned back into the payload of the button it names, and
the payload into the parse data Rasa would have produced for it; for a policy
topic that includes the response selector's choice, so `utter_faq` answers it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional

RETRIEVAL_INTENT = "faq"
_PAYLOAD = re.compile(r"^/(?P<intent>[a-z_]+)(?:/(?P<topic>[a-z_]+))?(?P<entities>\{.*\})?$", re.S)


def parse_payload(payload: str) -> Optional[Dict[str, Any]]:
    """Parse data for a payload, or None when it is not an intent payload."""
    match = _PAYLOAD.match(payload.strip())
    if not match:
        return None
    intent = match.group("intent")
    entities = []
    if match.group("entities"):
        try:
            values = json.loads(match.group("entities"))
        except ValueError:
            return None
        if not isinstance(values, dict):
            return None
        entities = [{"entity": key, "value": value} for key, value in values.items()]
    parse_data: Dict[str, Any] = {
        "text": payload,
        "intent": {"name": intent, "confidence": 1.0},
        "intent_ranking": [{"name": intent, "confidence": 1.0}],
        "entities": entities,
    }
    topic = match.group("topic")
    if topic:
        if intent != RETRIEVAL_INTENT:
            return None
        key = f"{RETRIEVAL_INTENT}/{topic}"
        parse_data["response_selector"] = {
            "all_retrieval_intents": [RETRIEVAL_INTENT],
            RETRIEVAL_INTENT: {
                "response": {
                    "id": None,
                    "responses": [],
                    "response_templates": [],
                    "confidence": 1.0,
                    "intent_response_key": key,
                    "utter_action": f"utter_{key}",
                    "template_name": f"utter_{key}",
                },
                "ranking": [{"intent_response_key": key, "confidence": 1.0}],
            },
        }
    return parse_data
