"""Contacts: identity, traits, tags and the event log, and how events change them."""
