"""荣军助手 (vetbot): a WeChat assistant for veterans affairs bureaus."""

__version__ = "0.1.0"
