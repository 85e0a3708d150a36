"""The WeChat protocol edge: verify, decrypt, parse, de-duplicate, render, send.

``protocol`` checks and parses what WeChat posts to ``/wechat`` and builds the
passive reply; ``render`` turns Rasa's messages into WeChat texts; ``dedup``
gives a retry the first attempt's answer; ``token`` and ``client`` talk to the
WeChat API (access_token, customer-service and template messages); ``mockapi``
stands in for that API offline and ``simulator`` plays the WeChat user.
Nothing here knows Rasa or the gateway's routes, and only two modules know the
database: ``dbtoken`` keeps the shared access_token there when there is no
Redis, and ``delivery`` sends the outbox rows the services queue.
"""
