"""Operators of the pipeline: thin subclasses of the Amazon provider's, plus what it lacks."""
