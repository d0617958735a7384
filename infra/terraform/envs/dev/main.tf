provider "google" {
  project = var.project_id
  region  = var.region
}

# The same call in every environment: environments differ only in terraform.tfvars.
module "calsync" {
  source = "../../modules/calsync"

  project_id                  = var.project_id
  region                      = var.region
  environment                 = var.environment
  control_calendar_id         = var.control_calendar_id
  admin_group                 = var.admin_group
  admin_emails                = var.admin_emails
  admin_id_token_audiences    = var.admin_id_token_audiences
  delegated_user              = var.delegated_user
  writers                     = var.writers
  firestore_location          = var.firestore_location
  deletion_protection         = var.deletion_protection
  enable_kms_token_key        = var.enable_kms_token_key
  function_min_instances      = var.function_min_instances
  alert_notification_channels = var.alert_notification_channels
  build_service_account       = var.build_service_account
  bundle_dir                  = "${path.root}/../../../../build"
}
