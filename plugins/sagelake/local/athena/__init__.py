"""The local Athena engine: Athena SQL (Trino/Presto dialect) executed for real on DuckDB.

Statements are parsed and translated with sqlglot (:mod:`.sql`), every referenced table is resolved through
the Glue Data Catalog and read through a DuckDB view of what Athena would read: the registered partitions at
their registered locations (or the table's Location), with the catalog's columns (:mod:`.views`), and
:class:`~sagelake.local.athena.engine.LocalAthenaEngine` runs the result, CTAS included (:mod:`.engine`).
"""
