"""Purchase analytics: RFM segments and churn prediction that knows each customer's rhythm.

Pure code. ``facts`` and ``events`` (what a contact carries and what is announced) import only pydantic,
so the hot path and the functions that apply results never load numpy; the models (``history``,
``rfm``, ``btyd``, ``churn``, ``rhythm``, ``scoring``) use numpy and scipy and run only in the nightly
fit and the ``lifecycle-analytics`` command.
"""
