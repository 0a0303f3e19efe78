"""Segments: named filters over what is known about a contact, with a membership kept current."""
