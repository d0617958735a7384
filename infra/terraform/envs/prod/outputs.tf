output "function_urls" {
  description = "HTTPS address of each function."
  value       = module.calsync.function_urls
}

output "secret_ids" {
  description = "Secrets to add versions to (gcloud secrets versions add ...)."
  value       = module.calsync.secret_ids
}

output "function_service_accounts" {
  description = "Runtime service account of each function."
  value       = module.calsync.function_service_accounts
}

output "queues" {
  description = "Cloud Tasks queue names."
  value       = module.calsync.queues
}
