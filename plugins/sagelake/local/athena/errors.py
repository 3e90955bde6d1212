"""The errors of the local Athena engine, worded as Athena reports them."""

from __future__ import annotations


class AthenaEngineError(RuntimeError):
    """A statement failed; the message is what Athena would put in the query's StateChangeReason."""


class AthenaSyntaxError(AthenaEngineError):
    """The SQL does not parse as one Athena statement."""


class AthenaTableNotFoundError(AthenaEngineError):
    """A referenced table is not in the Glue Data Catalog."""


class UnsupportedAthenaFeatureError(AthenaEngineError):
    """The statement uses an Athena feature the local engine does not implement."""
