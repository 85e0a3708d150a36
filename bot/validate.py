"""`vetbot validate`: `rasa data validate`, with every warning treated as an error
except the ones Rasa cannot know are fine.

Rasa's validator warns about responses that no story or rule uses. Some
responses are uttered by custom actions (`response="utter_…"` in actions/)
or by Rasa's own default actions (utter_default, utter_ask_rephrase); those
warnings are expected. Any other warning (an example under two intents,
a story conflict, an unknown intent …) fails the check.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Iterable, List, Set

from bot.settings import PROJECT_ROOT

# Responses that Rasa's default actions utter by name.
RASA_DEFAULT_RESPONSES = {"utter_default", "utter_ask_rephrase"}
_UNUSED = re.compile(r"The utterance '(?P<name>utter_[\w/]+)' is not used in any story or rule")
# Intents that only the channel sends, as a payload (/send_attachment{…}): nobody types
# them, so they have no NLU examples.
PAYLOAD_ONLY_INTENTS = {"send_attachment"}
# Intents that only an NLU component sets (bot/nlu/symbols.py: emoji or punctuation only),
# with nothing for the classifiers to learn.
COMPONENT_ONLY_INTENTS = {"symbols_only"}
_NO_EXAMPLES = re.compile(r"The intent '(?P<name>\w+)' is listed in the domain file, but is not found in the NLU")
# Rasa adds the retrieval intent once per domain file that holds its responses.
_FAQ_SPLIT_ACROSS_FILES = "duplicated intents have been found across multiple domain files: faq"


def responses_uttered_by_actions(actions_dir: Path = PROJECT_ROOT / "actions",
                                 domain_dir: Path = PROJECT_ROOT / "domain") -> Set[str]:
    names: Set[str] = set()
    for path in actions_dir.rglob("*.py"):
        names.update(re.findall(r"""response\s*=\s*["'](utter_[\w/]+)["']""", path.read_text(encoding="utf-8")))
    # actions/policy.py utters every policy answer by its topic (response=f"utter_{topic}"),
    # in place of Rasa's retrieval action utter_faq.
    import yaml

    names.add("utter_faq")
    for path in (domain_dir / "faq").glob("*.yml"):
        names.update((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("responses") or {})
    return names


def form_questions(domain_dir: Path = PROJECT_ROOT / "domain") -> Set[str]:
    """utter_ask_<slot> for every slot a form requires: Rasa asks with them by name."""
    import yaml

    names: Set[str] = set()
    for path in domain_dir.rglob("*.yml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for form in (data.get("forms") or {}).values():
            names.update(f"utter_ask_{slot}" for slot in (form or {}).get("required_slots") or [])
    return names


def unexpected_warnings(output: str, allowed_unused: Iterable[str]) -> List[str]:
    allowed = set(allowed_unused)
    problems = []
    for line in output.splitlines():
        if "UserWarning" not in line:
            continue
        message = line.split("UserWarning:", 1)[1].strip()
        unused = _UNUSED.search(message)
        if unused and unused.group("name") in allowed:
            continue
        if _FAQ_SPLIT_ACROSS_FILES in message:
            continue
        no_examples = _NO_EXAMPLES.search(message)
        if no_examples and no_examples.group("name") in PAYLOAD_ONLY_INTENTS | COMPONENT_ONLY_INTENTS:
            continue
        problems.append(message)
    return problems


def validate() -> int:
    cmd = [
        sys.executable, "-m", "rasa", "data", "validate",
        "--config", "config.yml", "--domain", "domain", "--data", "nlu_data",
    ]
    result = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        print(output, file=sys.stderr)
        print("rasa data validate failed", file=sys.stderr)
        return result.returncode
    problems = unexpected_warnings(output, RASA_DEFAULT_RESPONSES | responses_uttered_by_actions() | form_questions())
    for problem in problems:
        print(f"validation warning: {problem}", file=sys.stderr)
    if problems:
        print(f"rasa data validate: {len(problems)} warning(s) — fix the data", file=sys.stderr)
        return 1
    print("rasa data validate: no errors, no unexpected warnings")
    return 0
