terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.4.0 added `edition` to google_spanner_instance (spanner.tf sets ENTERPRISE).
      version = ">= 6.4, < 8.0"
    }
  }
  # State lives in a GCS bucket (it holds the Redis AUTH string): infra/deploy.sh passes
  # -backend-config=bucket=$TF_STATE_BUCKET at init.
  backend "gcs" {
    prefix = "zendesk-sidebar-assistant"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
