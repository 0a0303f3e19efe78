"""Domain, use cases and AWS adapters shared by every Lifecycle function.

Layers, bottom to top (``tests/unit/test_layers.py`` checks that imports run downward only):
``errors``/``clock``; the domain packages (tracking, scoring, contacts, engagement: pure, time
and stores passed in); ``usecases`` (orchestration through the ports each declares); the
boundary (``adapters`` for AWS, ``http``, ``settings``, ``observability``); ``admin``; ``runtime``.
"""
