"""The local Redshift engine: Redshift SQL executed for real on a DuckDB database file.

Statements are parsed with sqlglot's Redshift dialect, checked for what the translation cannot express
faithfully (refused, naming the construct) and written as DuckDB SQL (:mod:`.sql`). Tables of an external
schema (Redshift Spectrum, ``CREATE EXTERNAL SCHEMA … FROM DATA CATALOG``) are read through the Glue Data
Catalog exactly as the local Athena engine reads them; a batch of statements runs in one transaction, as
the Data API's ``BatchExecuteStatement`` does (:mod:`.engine`).
"""
