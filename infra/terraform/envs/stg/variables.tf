variable "project_id" {
  description = "Google Cloud project of this environment."
  type        = string
}

variable "region" {
  description = "Region of the functions, queues and scheduler jobs."
  type        = string
}

variable "environment" {
  description = "Environment name: dev, stg or prod."
  type        = string
}

variable "control_calendar_id" {
  description = "Google id of this environment's control calendar."
  type        = string
}

variable "admin_group" {
  description = "Google group allowed to invoke the publish function."
  type        = string
}

variable "admin_emails" {
  description = "Google identities the code treats as admins."
  type        = list(string)
  default     = []
}

variable "delegated_user" {
  description = "Workspace user the Calendar service account impersonates (domain-wide delegation); empty for none."
  type        = string
  default     = ""
}

variable "writers" {
  description = "Workspace users calsync writes as (the writer pool); empty: delegated_user alone. Append only."
  type        = list(string)
  default     = []
}

variable "firestore_location" {
  description = "Firestore location id (region or multi-region)."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the Firestore database from deletion."
  type        = bool
  default     = true
}

variable "enable_kms_token_key" {
  description = "Create a Cloud KMS key for refresh-token encryption."
  type        = bool
  default     = false
}

variable "function_min_instances" {
  description = "Warm instances per function name (webhook, sync, renew, publish)."
  type        = map(number)
  default     = {}
}

variable "alert_notification_channels" {
  description = "Monitoring notification channel ids the alert policies notify."
  type        = list(string)
  default     = []
}

variable "build_service_account" {
  description = "Full resource name (projects/P/serviceAccounts/EMAIL) of the account Cloud Build builds the functions with; null: the project default."
  type        = string
  default     = null
}

variable "admin_id_token_audiences" {
  description = "Dev only: audiences accepted on admins' ID tokens besides the publish URL (e.g. gcloud's OAuth client id)."
  type        = list(string)
  default     = []
}
