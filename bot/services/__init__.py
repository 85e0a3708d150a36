"""The domain: plain Python on SQLAlchemy sessions; no HTTP, no Rasa, no WeChat."""
