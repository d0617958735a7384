variable "project_id" {
  description = "Google Cloud project that hosts the function."
  type        = string
}

variable "region" {
  description = "Region of the function (and of its underlying Cloud Run service)."
  type        = string
}

variable "name" {
  description = "Function name (also the Cloud Run service name and the service account id's base); lowercase, <= 49 chars."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,48}$", var.name))
    error_message = "name must be lowercase letters, digits and hyphens, starting with a letter, at most 49 characters."
  }
}

variable "description" {
  description = "Human description of the function."
  type        = string
  default     = ""
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "entry_point" {
  description = "Name of the Python callable in main.py that serves requests."
  type        = string
}

variable "source_zip" {
  description = "Path to the source zip built by `make bundle` (main.py + calsync + requirements.txt)."
  type        = string
}

variable "source_bucket" {
  description = "GCS bucket the source zip is uploaded to; the object is named by the zip's md5 so any change redeploys."
  type        = string
}

variable "service_account_id" {
  description = "account_id of the function's own runtime service account (6-30 chars)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id must be 6-30 lowercase letters, digits or hyphens."
  }
}

variable "build_service_account" {
  description = "Full resource name of the service account Cloud Build uses to build the function (null: the project default)."
  type        = string
  default     = null
}

variable "env_vars" {
  description = "Plain environment variables (never secret values: those go through secret_env_vars or Secret Manager at run time)."
  type        = map(string)
  default     = {}
}

variable "secret_env_vars" {
  description = "Environment variables filled from Secret Manager at start-up: env name -> {secret id, version}. Only references are stored in state."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "min_instances" {
  description = "Minimum warm instances (0 = scale to zero)."
  type        = number
  default     = 0
}

variable "max_instances" {
  description = "Maximum instances: caps concurrency against the Calendar quota and cost."
  type        = number
  default     = 10
}

variable "concurrency" {
  description = "Concurrent requests one instance serves (above 1 needs available_cpu of at least 1)."
  type        = number
  default     = 1

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 1000
    error_message = "concurrency must be between 1 and 1000."
  }
}

variable "timeout_s" {
  description = "Request timeout in seconds (HTTP functions allow up to 3600)."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 3600
    error_message = "timeout_s must be between 1 and 3600."
  }
}

variable "available_memory" {
  description = "Memory per instance, e.g. \"256Mi\"."
  type        = string
  default     = "256Mi"
}

variable "available_cpu" {
  description = "vCPU per instance, e.g. \"1\" or \"0.167\"."
  type        = string
  default     = "1"
}

variable "ingress" {
  description = "Ingress: ALLOW_ALL (internet), ALLOW_INTERNAL_ONLY (VPC plus Cloud Tasks/Scheduler of the project) or ALLOW_INTERNAL_AND_GCLB."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "invoker_members" {
  description = "IAM members granted roles/run.invoker on the function, e.g. serviceAccount:x@p.iam.gserviceaccount.com, group:admins@example.com, allUsers."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels set on the function and its source object."
  type        = map(string)
  default     = {}
}
