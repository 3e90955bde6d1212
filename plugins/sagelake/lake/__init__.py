"""The data lake: S3 layout by partition, the Glue Data Catalog as code, and the assets that chain DAGs."""
