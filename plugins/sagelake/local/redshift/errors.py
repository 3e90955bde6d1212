"""The errors of the local Redshift engine."""

from __future__ import annotations


class RedshiftEngineError(RuntimeError):
    """A statement failed; the message is what the Data API would put in the statement's ``Error``."""


class RedshiftSyntaxError(RedshiftEngineError):
    """The SQL does not parse as one Redshift statement."""


class UnsupportedRedshiftFeatureError(RedshiftEngineError):
    """The statement uses something the local engine cannot run faithfully; the message names it."""


class NoResultSetError(RedshiftEngineError):
    """``GetStatementResult`` of a statement that returns no rows (the Data API answers an error too)."""
