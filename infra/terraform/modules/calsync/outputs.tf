output "function_urls" {
  description = "HTTPS address of each function (the webhook's is the push address Google calls)."
  value       = local.function_urls
}

output "function_service_accounts" {
  description = "Runtime service account email of each function."
  value       = { for name, fn in module.function : name => fn.service_account_email }
}

output "tasks_invoker_service_accounts" {
  description = "Per task target (sync, renew, publish), the service account whose OIDC token Cloud Tasks sends."
  value       = { for target, account in google_service_account.invoker : target => account.email }
}

output "firestore_push_database" {
  description = "The Firestore database of the push state (channels), the webhook's only one."
  value       = google_firestore_database.push.name
}

output "scheduler_service_account" {
  description = "Service account whose OIDC token Cloud Scheduler sends."
  value       = google_service_account.scheduler.email
}

output "queues" {
  description = "Cloud Tasks queue names."
  value       = { sync = google_cloud_tasks_queue.sync.name, publish = google_cloud_tasks_queue.publish.name }
}

output "secret_ids" {
  description = "Secret Manager secret ids to add versions to (docs/deploy.md)."
  value       = { for key, secret in google_secret_manager_secret.this : key => secret.secret_id }
}

output "source_bucket" {
  description = "Bucket holding the functions' source zips."
  value       = google_storage_bucket.sources.name
}

output "kms_token_key" {
  description = "Cloud KMS key for refresh-token encryption (null unless enable_kms_token_key)."
  value       = var.enable_kms_token_key ? google_kms_crypto_key.token[0].id : null
}

output "calendar_service_account" {
  description = "The keyless delegation account: authorise its client id for the Calendar scope in Workspace."
  value       = { email = google_service_account.calendar.email, client_id = google_service_account.calendar.unique_id }
}
