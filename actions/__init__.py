"""Custom actions of 荣军助手, run by the rasa-sdk action server.

Thin translations between the tracker and `bot/`; one module per user goal.
"""
