output "name" {
  description = "Function name."
  value       = google_cloudfunctions2_function.this.name
}

output "url" {
  description = "HTTPS URL the function serves (as reported by Cloud Functions)."
  value       = google_cloudfunctions2_function.this.url
}

output "service_account_email" {
  description = "Email of the function's runtime service account."
  value       = google_service_account.this.email
}

output "service_account_member" {
  description = "IAM member string of the function's runtime service account."
  value       = google_service_account.this.member
}

output "source_object" {
  description = "GCS object holding the deployed source (named by the zip's md5)."
  value       = google_storage_bucket_object.source.name
}
