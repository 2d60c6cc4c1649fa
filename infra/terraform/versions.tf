terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
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
