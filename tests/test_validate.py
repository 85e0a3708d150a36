from bot.validate import (
    PAYLOAD_ONLY_INTENTS,
    RASA_DEFAULT_RESPONSES,
    form_questions,
    responses_uttered_by_actions,
    unexpected_warnings,
)

OUTPUT = """\
INFO rasa.validator - Validating intents...
/x/io.py:100: UserWarning: The utterance 'utter_choose_in_range' is not used in any story or rule.
/x/io.py:100: UserWarning: The utterance 'utter_default' is not used in any story or rule.
/x/io.py:100: UserWarning: The following duplicated intents have been found across multiple domain files: faq
"""


def test_expected_warnings_pass():
    allowed = RASA_DEFAULT_RESPONSES | responses_uttered_by_actions()
    assert unexpected_warnings(OUTPUT, allowed) == []


def test_other_warnings_fail():
    output = OUTPUT + (
        "/x/io.py:100: UserWarning: The example '政策咨询' was found labeled with multiple different intents\n"
        "/x/io.py:100: UserWarning: The utterance 'utter_forgotten' is not used in any story or rule.\n"
    )
    problems = unexpected_warnings(output, RASA_DEFAULT_RESPONSES | responses_uttered_by_actions())
    assert len(problems) == 2
    assert "政策咨询" in problems[0] and "utter_forgotten" in problems[1]


def test_responses_uttered_by_actions_are_found_in_the_code():
    assert {"utter_no_menu_to_choose", "utter_choose_in_range", "utter_ask_rephrase"} <= responses_uttered_by_actions()


def test_form_questions_and_payload_only_intents_pass_but_nothing_else():
    output = (
        "/x/io.py:100: UserWarning: The utterance 'utter_ask_complaint_addition' is not used in any story or rule.\n"
        "/x/io.py:100: UserWarning: The utterance 'utter_ask_nothing_asks_this' is not used in any story or rule.\n"
        "/x/io.py:100: UserWarning: The intent 'send_attachment' is listed in the domain file, but is not found "
        "in the NLU training data.\n"
        "/x/io.py:100: UserWarning: The intent 'forgotten' is listed in the domain file, but is not found "
        "in the NLU training data.\n"
    )
    assert "send_attachment" in PAYLOAD_ONLY_INTENTS
    problems = unexpected_warnings(output, RASA_DEFAULT_RESPONSES | form_questions())
    assert len(problems) == 2 and "utter_ask_nothing_asks_this" in problems[0] and "'forgotten'" in problems[1]


def test_intents_only_an_nlu_component_sets_pass():
    # symbols_only: set by bot/nlu/symbols.py for emoji or punctuation only, never learnt.
    output = ("/x/io.py:100: UserWarning: The intent 'symbols_only' is listed in the domain file, but is not "
              "found in the NLU training data.\n")
    assert unexpected_warnings(output, set()) == []
