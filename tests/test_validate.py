from bot.validate import RASA_DEFAULT_RESPONSES, responses_uttered_by_actions, unexpected_warnings

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
