"""Domain and AWS adapters shared by every Lifecycle function.

Layers: domain modules (tracking, contacts, ...) are pure and take time and
stores as parameters; only ``shared.adapters`` talks to AWS; ``shared.http``
and ``shared.settings`` sit at the Lambda boundary.
"""
