"""Custom Rasa NLU components for Chinese text."""
