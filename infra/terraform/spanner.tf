# Spanner: the durable session archive and the hybrid (full-text + vector) knowledge index.
# The DDL is the store's own schema file (generated from store/spanner/ddl.py): statements are
# split on `;` after dropping `--` comments. Terraform applies added statements in place.
locals {
  spanner_schema = replace(file("${path.module}/../spanner/schema.sql"), "/--[^\n]*/", "")
  spanner_ddl    = [for s in split(";", local.spanner_schema) : trimspace(s) if trimspace(s) != ""]
}

resource "google_spanner_instance" "main" {
  name             = local.name
  display_name     = "Zendesk sidebar assistant"
  config           = var.spanner_config
  processing_units = var.spanner_processing_units
  edition          = "ENTERPRISE" # full-text search and vector indexes
  depends_on       = [google_project_service.apis]
}

resource "google_spanner_database" "main" {
  instance                 = google_spanner_instance.main.name
  name                     = var.spanner_database
  database_dialect         = "GOOGLE_STANDARD_SQL"
  version_retention_period = "7d" # point-in-time recovery window (see the runbook)
  ddl                      = local.spanner_ddl
  deletion_protection      = var.deletion_protection
}
