variable "project_id" {
  description = "Google Cloud project of this environment."
  type        = string
}

variable "region" {
  description = "Region of the functions, queues and scheduler jobs."
  type        = string
}

variable "environment" {
  description = "Environment name: dev, stg or prod (CALSYNC_ENVIRONMENT; also the resource-name prefix)."
  type        = string

  validation {
    condition     = contains(["dev", "stg", "prod"], var.environment)
    error_message = "environment must be dev, stg or prod."
  }
}

variable "control_calendar_id" {
  description = "Google id of this environment's control calendar (CALSYNC_CONTROL_CALENDAR_ID)."
  type        = string
}

variable "admin_group" {
  description = "Google group allowed to invoke the publish function, e.g. calsync-admins@example.com."
  type        = string
}

variable "admin_emails" {
  description = "Google identities the code treats as admins (CALSYNC_ADMIN_EMAILS)."
  type        = list(string)
  default     = []
}

variable "admin_id_token_audiences" {
  description = "Dev only: audiences accepted on admins' ID tokens besides the publish URL, e.g. gcloud's OAuth client id (CALSYNC_ADMIN_ID_TOKEN_AUDIENCES); ignored in stg/prod."
  type        = list(string)
  default     = []
}

variable "delegated_user" {
  description = "Workspace user the Calendar service account impersonates (domain-wide delegation); empty for none."
  type        = string
  default     = ""
}

variable "writers" {
  description = "Workspace users calsync writes as (the writer pool, e.g. agenda-1@ ... agenda-N@); each calendar stays with the one that created it, new calendars go to the least busy. Empty: delegated_user alone. Append only: removing a writer orphans its calendars."
  type        = list(string)
  default     = []
}

variable "invite_patients" {
  description = "Clinics whose patients are invited as attendees of the professional's event (\"*\": every clinic; []: none). Invitations to guests outside the writers' domain count against Google's external-guest limit."
  type        = list(string)
  default     = ["*"]
}

variable "bundle_dir" {
  description = "Folder holding the source zips built by `make bundle` (<function>.zip)."
  type        = string
}

variable "firestore_location" {
  description = "Firestore location id (a region such as southamerica-east1 or a multi-region such as nam5)."
  type        = string
}

variable "firestore_database" {
  description = "Firestore database id (CALSYNC_FIRESTORE_DATABASE); \"(default)\" unless several environments share a project."
  type        = string
  default     = "(default)"
}

variable "deletion_protection" {
  description = "Protect the Firestore database from deletion (keep true outside dev)."
  type        = bool
  default     = true
}

variable "scheduler_time_zone" {
  description = "Time zone of the Cloud Scheduler cron expressions."
  type        = string
  default     = "America/Sao_Paulo"
}

variable "build_service_account" {
  description = "Full resource name of a service account Cloud Build uses to build the functions (null: the project default)."
  type        = string
  default     = null
}

variable "function_min_instances" {
  description = "Warm instances per function (0 scales to zero; 1 on the webhook shortens Google's push latency)."
  type        = map(number)
  default     = {}
}

variable "function_max_instances" {
  description = "Maximum instances per function, overriding the module defaults (webhook 20, sync 10, renew 2, publish 2)."
  type        = map(number)
  default     = {}
}

variable "sync_past_days" {
  description = "Full-sync window into the past in days (30-60)."
  type        = number
  default     = 45

  validation {
    condition     = var.sync_past_days >= 30 && var.sync_past_days <= 60
    error_message = "sync_past_days must be between 30 and 60."
  }
}

variable "calendar_user_requests_per_minute" {
  description = "Calendar API per-user quota the sync queue is throttled against (Google's default: 600/min/user)."
  type        = number
  default     = 600
}

variable "enable_kms_token_key" {
  description = "Envelope-encrypt clinics' refresh tokens with a Cloud KMS key (90-day rotation) instead of the token key secret."
  type        = bool
  default     = false
}

variable "alert_notification_channels" {
  description = "Monitoring notification channel ids the alert policies notify."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels added to every labelled resource."
  type        = map(string)
  default     = {}
}
