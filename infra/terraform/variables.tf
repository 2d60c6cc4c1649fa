variable "project_id" {
  type        = string
  description = "Google Cloud project that hosts everything."
}

variable "region" {
  type        = string
  default     = "us-central1"
  description = "Region of Cloud Run, Memorystore, Artifact Registry and the subnet."
}

variable "service_name" {
  type        = string
  default     = "sidebar-assistant"
  description = "Cloud Run service name; also the prefix of every other resource name."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,22}[a-z0-9]$", var.service_name))
    error_message = "service_name: 4-24 chars, lowercase letters, digits and dashes."
  }
}

variable "subnet_cidr" {
  type        = string
  default     = "10.8.0.0/24"
  description = "Subnet Cloud Run's Direct VPC egress takes instance addresses from (needs 2x max instances)."
}

variable "redis_tier" {
  type        = string
  default     = "STANDARD_HA"
  description = "BASIC (dev) or STANDARD_HA (replica + automatic failover)."
  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_gb" {
  type        = number
  default     = 1
  description = "Memorystore size; sessions are small (tens of KB) and expire after SESSION_TTL_SECONDS."
}

variable "spanner_config" {
  type        = string
  default     = "regional-us-central1"
  description = "Spanner instance configuration (keep it in the Cloud Run region)."
}

variable "spanner_processing_units" {
  type        = number
  default     = 100
  description = "Spanner compute: 100 PU is the smallest production size; scale in steps of 100 up to 1000, then 1000s."
}

variable "spanner_database" {
  type        = string
  default     = "sidebar"
  description = "Spanner database id (SPANNER_DATABASE)."
}

variable "deletion_protection" {
  type        = bool
  default     = true
  description = "Protects the Spanner database from `terraform destroy`."
}

variable "embedding_dimensions" {
  type        = number
  default     = 768
  description = "EMBEDDING_DIMENSIONS: width of the Spanner Embedding column, the same the service asks Vertex AI for."
  validation {
    condition     = var.embedding_dimensions >= 1 && var.embedding_dimensions <= 3072
    error_message = "embedding_dimensions must be within 1..3072 (gemini-embedding-001's maximum)."
  }
}

variable "spanner_schema_file" {
  type        = string
  default     = ""
  description = "Rendered schema (infra/deploy.sh: store/spanner/ddl.py for embedding_dimensions); empty: infra/spanner/schema.sql."
}
