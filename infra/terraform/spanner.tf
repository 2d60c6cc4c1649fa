# Spanner: the durable session archive and the hybrid (full-text + vector) knowledge index.
# The DDL is the store's own schema (store/spanner/ddl.py): infra/deploy.sh renders it for
# EMBEDDING_DIMENSIONS into var.spanner_schema_file; without it, the committed schema.sql (768).
# Statements are split on `;` after dropping `--` comments; Terraform applies added statements in
# place. The vector index is not among them: it is created after the first load (deploy.sh).
locals {
  spanner_schema_file = var.spanner_schema_file != "" ? var.spanner_schema_file : "${path.module}/../spanner/schema.sql"
  spanner_schema      = replace(file(local.spanner_schema_file), "/--[^\n]*/", "")
  spanner_ddl         = [for s in split(";", local.spanner_schema) : trimspace(s) if trimspace(s) != ""]
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

  lifecycle {
    precondition {
      condition     = strcontains(local.spanner_schema, "vector_length=>${var.embedding_dimensions}")
      error_message = "The Spanner schema's Embedding column is not ${var.embedding_dimensions} wide: render it with `python3 store/spanner/ddl.py ${var.embedding_dimensions}` (infra/deploy.sh does)."
    }
  }
}
